"""The polite, guarded HTTP fetcher.

Every request goes through the same steps, and again for every redirect hop
(at most :data:`MAX_REDIRECTS`, followed here, never by httpx)::

    check_url (scheme, credentials, IP spellings)      -> UNSAFE_URL / INVALID_URL
    deny list (no network access at all)               -> DENIED_HOST
    source scope (hosts, URL prefixes)                 -> OUT_OF_SCOPE
    host resolves to public addresses only             -> UNSAFE_URL
    robots.txt of the origin (cached, RFC 9309)        -> ROBOTS
    per-host concurrency slot + rate limit
    GET through GuardedTransport (connects to checked IPs only)
        whole request within policy.timeout            -> TIMEOUT
        status, media type, Content-Length, streamed byte cap
                                                       -> HTTP_ERROR / NOT_IMAGE / TOO_LARGE

Outcomes are values, not exceptions: a :class:`FetchedImage` or a
:class:`Refusal` to record. Only programming errors propagate.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from types import TracebackType
from typing import TypeVar

import httpx

from facetrace.config import Settings
from facetrace.errors import UnsafeURLError
from facetrace.ingest.fetch.html import extract_links
from facetrace.ingest.fetch.media import (
    SNIFF_BYTES,
    UNKNOWN_TYPES,
    is_html_type,
    is_image_type,
    parse_content_type,
    sniff_image,
)
from facetrace.ingest.fetch.policy import SourcePolicy
from facetrace.ingest.fetch.robots import (
    ROBOTS_MAX_BYTES,
    ROBOTS_MAX_REDIRECTS,
    RobotsCache,
    RobotsRules,
    origin_key,
    robots_url,
    rules_for_status,
)
from facetrace.ingest.fetch.ssrf import (
    GuardedTransport,
    Resolver,
    check_url,
    resolve_checked,
    system_resolver,
)
from facetrace.ingest.fetch.types import FetchedImage, Refusal, RefusalKind

#: Redirect hops followed for one URL; one more is refused.
MAX_REDIRECTS = 5
#: Longest robots.txt Crawl-delay honoured, seconds (longer ones are cut to this).
MAX_CRAWL_DELAY = 60.0
#: How long a host's "resolves to public addresses" pre-check is reused, seconds.
#: (The connect-time check in GuardedTransport runs on every connection regardless.)
HOST_CHECK_TTL = 60.0

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024

T = TypeVar("T")
R = TypeVar("R")


class _Want(Enum):
    IMAGE = "image"  # image content only
    ANY = "any"  # an image, or an HTML page to look into
    ROBOTS = "robots"  # robots.txt: any type, truncated at the cap instead of refused


@dataclass(frozen=True)
class _Body:
    url: httpx.URL  # where the body came from (after redirects)
    status: int
    media_type: str
    charset: str | None
    content: bytes
    fetched_at: datetime

    @property
    def is_html(self) -> bool:
        return is_html_type(self.media_type)

    def text(self) -> str:
        encoding = self.charset or "utf-8"
        try:
            return self.content.decode(encoding, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class _Redirect:
    location: str


class _HostGate:
    """Per-host concurrency slots and request spacing (rate limit)."""

    def __init__(self, concurrency: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._concurrency = concurrency
        self._clock = clock
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}

    @contextlib.asynccontextmanager
    async def slot(self, host: str, interval: float) -> AsyncIterator[None]:
        """Hold one of the host's slots, starting ``interval`` s or more after the last start."""
        sem = self._semaphores.setdefault(host, asyncio.Semaphore(self._concurrency))
        async with sem:
            now = self._clock()
            start = max(now, self._next_start.get(host, now))
            self._next_start[host] = start + interval
            if start > now:
                await asyncio.sleep(start - now)
            yield


class Fetcher:
    """Fetch images (directly, or from HTML pages) under one :class:`SourcePolicy`.

    Use as an async context manager; it owns one httpx client::

        async with Fetcher(policy, settings) as fetcher:
            async for item in fetcher.fetch_many(urls):
                ...  # FetchedImage to store, or Refusal to record

    Args:
        policy: the source's scope and limits.
        settings: ``user_agent``, ``allow_loopback`` and ``max_image_bytes`` are used
            (an image's cap is the smaller of it and ``policy.max_bytes``).
        resolver: DNS resolver for the SSRF guard (tests may inject one).
        max_concurrency: URLs (across all hosts) worked on at once.
        robots_ttl: seconds a robots.txt is cached (at most 24 h).
    """

    def __init__(
        self,
        policy: SourcePolicy,
        settings: Settings,
        *,
        resolver: Resolver = system_resolver,
        max_concurrency: int = 16,
        robots_ttl: float = 24 * 3600.0,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.policy = policy
        self.settings = settings
        self._resolver = resolver
        self._max_concurrency = max_concurrency
        self._allow_loopback = settings.allow_loopback
        self._user_agent = settings.user_agent
        self._image_cap = min(policy.max_bytes, settings.max_image_bytes)
        self._robots = RobotsCache(ttl=robots_ttl)
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._host_checked: dict[str, float] = {}
        self._gate = _HostGate(policy.max_concurrency_per_host)
        self._seen_images: set[str] = set()
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Fetcher:
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(
                allow_loopback=self._allow_loopback, resolver=self._resolver
            ),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(self.policy.timeout),
            headers={"User-Agent": self._user_agent},
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client and its connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- public --------------------------------------------------------------

    async def fetch_many(self, urls: Iterable[str]) -> AsyncIterator[FetchedImage | Refusal]:
        """:meth:`fetch` every URL, up to ``max_concurrency`` at once; results as they come."""
        async for item in _merge(urls, self.fetch, self._max_concurrency):
            yield item

    async def fetch(self, url: str) -> AsyncIterator[FetchedImage | Refusal]:
        """Collect one listed URL: an image, or an HTML page's images (and, within
        ``policy.max_depth``, the images of pages it links to, in scope only).

        Links outside scope or on the deny list are not followed and not reported;
        images outside scope are reported as refusals.
        """
        first = await self._get(url, _Want.ANY, page_url=None)
        if isinstance(first, Refusal):
            yield first
            return
        if not first.is_html:
            if self._first_sighting(url):
                yield self._image(first, url, None)
            return
        pages_seen = {url, str(first.url)}
        pages_fetched = 1
        queue: deque[tuple[_Body, int]] = deque([(first, 0)])
        while queue:
            page, depth = queue.popleft()
            page_url = str(page.url)
            found = extract_links(page.text(), page_url)
            async for item in self._fetch_images(found.images, page_url):
                yield item
            if depth >= self.policy.max_depth:
                continue
            for link in found.links:
                if link in pages_seen or not self._followable(link):
                    continue
                pages_seen.add(link)
                if pages_fetched >= self.policy.max_pages:
                    yield Refusal(
                        link,
                        f"crawl budget of {self.policy.max_pages} pages reached",
                        RefusalKind.CRAWL_BUDGET,
                        page_url,
                    )
                    queue.clear()
                    break
                pages_fetched += 1
                result = await self._get(link, _Want.ANY, page_url=page_url)
                if isinstance(result, Refusal):
                    yield result
                elif result.is_html:
                    pages_seen.add(str(result.url))
                    queue.append((result, depth + 1))
                elif self._first_sighting(link):
                    yield self._image(result, link, page_url)

    async def fetch_image(self, url: str, page_url: str | None = None) -> FetchedImage | Refusal:
        """Fetch one image URL (image content types only, or bytes that sniff as an image)."""
        result = await self._get(url, _Want.IMAGE, page_url=page_url)
        if isinstance(result, Refusal):
            return result
        return self._image(result, url, page_url)

    # --- steps ---------------------------------------------------------------

    async def _fetch_images(
        self, urls: Iterable[str], page_url: str
    ) -> AsyncIterator[FetchedImage | Refusal]:
        todo = [u for u in urls if self._first_sighting(u)]

        async def one(u: str) -> AsyncIterator[FetchedImage | Refusal]:
            yield await self.fetch_image(u, page_url)

        async for item in _merge(todo, one, self._max_concurrency):
            yield item

    def _first_sighting(self, url: str) -> bool:
        if url in self._seen_images:
            return False
        self._seen_images.add(url)
        return True

    def _followable(self, link: str) -> bool:
        """A link is crawled only if it is a valid http(s) URL in scope and not denied."""
        try:
            parsed = check_url(link, allow_loopback=self._allow_loopback)
        except UnsafeURLError:
            return False
        return self.policy.denied(parsed) is None and self.policy.in_scope(parsed)

    def _image(self, body: _Body, url: str, page_url: str | None) -> FetchedImage:
        return FetchedImage(
            content=body.content,
            image_url=url,
            page_url=page_url,
            fetched_at=body.fetched_at,
            content_type=body.media_type or None,
        )

    async def _get(self, start: str, want: _Want, page_url: str | None) -> _Body | Refusal:
        """GET ``start`` following redirects by hand, every hop admitted afresh."""
        try:
            parsed = httpx.URL(start)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            return Refusal(start, f"invalid URL: {exc}", RefusalKind.INVALID_URL, page_url)
        try:
            url = check_url(parsed, allow_loopback=self._allow_loopback)
        except UnsafeURLError as exc:
            return Refusal(start, str(exc), RefusalKind.UNSAFE_URL, page_url)
        seen = {str(url)}
        for _hop in range(MAX_REDIRECTS + 1):
            admitted = await self._admit(url, start, page_url)
            if isinstance(admitted, Refusal):
                return admitted
            cap = ROBOTS_MAX_BYTES if want is _Want.ROBOTS else self.policy.max_bytes
            result = await self._request(url, want, cap, admitted, start, page_url)
            if not isinstance(result, _Redirect):
                return result
            try:
                url = check_url(url.join(result.location), allow_loopback=self._allow_loopback)
            except (UnsafeURLError, httpx.InvalidURL) as exc:
                return Refusal(
                    result.location,
                    f"redirect from {start} refused: {exc}",
                    RefusalKind.UNSAFE_URL,
                    page_url,
                )
            if str(url) in seen:
                return Refusal(
                    start, f"redirect loop back to {url}", RefusalKind.REDIRECT_LOOP, page_url
                )
            seen.add(str(url))
        return Refusal(
            start, f"more than {MAX_REDIRECTS} redirects", RefusalKind.TOO_MANY_REDIRECTS, page_url
        )

    async def _admit(self, url: httpx.URL, start: str, page_url: str | None) -> float | Refusal:
        """Deny list, scope, address and robots checks; the host's request interval if admitted."""
        text = str(url)
        via = "" if text == start else f" (redirected from {start})"
        entry = self.policy.denied(url)
        if entry is not None:
            return Refusal(
                text,
                f"host {url.host} is on the deny list ({entry}): its terms forbid facial"
                f" recognition{via}",
                RefusalKind.DENIED_HOST,
                page_url,
            )
        if not self.policy.in_scope(url):
            return Refusal(
                text, f"outside the source's scope{via}", RefusalKind.OUT_OF_SCOPE, page_url
            )
        problem = await self._check_host(url)
        if problem is not None:
            return Refusal(text, problem.reason + via, problem.kind, page_url)
        rules = await self._robots_rules(url)
        if not rules.can_fetch(text, self._user_agent):
            return Refusal(
                text, f"robots.txt disallows it ({rules.detail}){via}", RefusalKind.ROBOTS, page_url
            )
        interval = 1.0 / self.policy.rate_limit
        delay = rules.crawl_delay(self._user_agent)
        if delay is not None:
            interval = max(interval, min(delay, MAX_CRAWL_DELAY))
        return interval

    async def _check_host(self, url: httpx.URL) -> Refusal | None:
        """Resolve the host once in a while so a private address is reported as UNSAFE_URL."""
        host = url.raw_host.decode("ascii")
        if self._host_checked.get(host, 0.0) > time.monotonic():
            return None
        try:
            await resolve_checked(
                host,
                url.port or (443 if url.scheme == "https" else 80),
                allow_loopback=self._allow_loopback,
                resolver=self._resolver,
            )
        except UnsafeURLError as exc:
            return Refusal(str(url), str(exc), RefusalKind.UNSAFE_URL)
        except httpx.HTTPError as exc:
            return Refusal(str(url), str(exc), RefusalKind.NETWORK_ERROR)
        self._host_checked[host] = time.monotonic() + HOST_CHECK_TTL
        return None

    async def _robots_rules(self, url: httpx.URL) -> RobotsRules:
        key = origin_key(url)
        cached = self._robots.get(key)
        if cached is not None:
            return cached
        async with self._robots_locks.setdefault(key, asyncio.Lock()):
            cached = self._robots.get(key)
            if cached is None:
                cached = await self._load_robots(url)
                self._robots.put(key, cached)
            return cached

    async def _load_robots(self, url: httpx.URL) -> RobotsRules:
        target = robots_url(url)
        seen = {str(target)}
        interval = 1.0 / self.policy.rate_limit
        for _hop in range(ROBOTS_MAX_REDIRECTS + 1):
            if self.policy.denied(target) is not None:
                return RobotsRules.disallow_all(f"robots.txt redirected to denied {target.host}")
            result = await self._request(
                target, _Want.ROBOTS, ROBOTS_MAX_BYTES, interval, str(target), None
            )
            if isinstance(result, Refusal):
                return RobotsRules.disallow_all(f"robots.txt unreachable: {result.reason}")
            if isinstance(result, _Redirect):
                try:
                    target = check_url(
                        target.join(result.location), allow_loopback=self._allow_loopback
                    )
                except (UnsafeURLError, httpx.InvalidURL) as exc:
                    return RobotsRules.disallow_all(f"robots.txt redirect refused: {exc}")
                if str(target) in seen:
                    return RobotsRules.allow_all("robots.txt redirect loop (unavailable)")
                seen.add(str(target))
                continue
            return rules_for_status(result.status) or RobotsRules.parsed(
                result.content, f"HTTP {result.status}"
            )
        return RobotsRules.allow_all(
            f"robots.txt: more than {ROBOTS_MAX_REDIRECTS} redirects (unavailable)"
        )

    async def _request(
        self,
        url: httpx.URL,
        want: _Want,
        cap: int,
        interval: float,
        start: str,
        page_url: str | None,
    ) -> _Body | _Redirect | Refusal:
        """One GET within the host's slot and the policy's timeout."""
        if self._client is None:
            raise RuntimeError("Fetcher is not open: use 'async with Fetcher(...)'")
        text = str(url)
        accept = "image/*" if want is _Want.IMAGE else "*/*"
        encoding = "identity" if want is _Want.IMAGE else "gzip, deflate"
        async with self._gate.slot(url.raw_host.decode("ascii"), interval):
            try:
                async with asyncio.timeout(self.policy.timeout):
                    request = self._client.build_request(
                        "GET", url, headers={"Accept": accept, "Accept-Encoding": encoding}
                    )
                    response = await self._client.send(request, stream=True)
                    try:
                        return await self._read(response, want, cap, start, page_url)
                    finally:
                        await response.aclose()
            except TimeoutError:
                reason = f"no complete response within {self.policy.timeout:g} s"
                return Refusal(text, reason, RefusalKind.TIMEOUT, page_url)
            except httpx.TimeoutException as exc:
                reason = f"timed out after {self.policy.timeout:g} s ({type(exc).__name__})"
                return Refusal(text, reason, RefusalKind.TIMEOUT, page_url)
            except UnsafeURLError as exc:
                return Refusal(text, str(exc), RefusalKind.UNSAFE_URL, page_url)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                return Refusal(text, reason, RefusalKind.NETWORK_ERROR, page_url)

    async def _read(
        self, response: httpx.Response, want: _Want, cap: int, start: str, page_url: str | None
    ) -> _Body | _Redirect | Refusal:
        url = response.url
        text = str(url)
        status = response.status_code
        if status in _REDIRECT_CODES and response.headers.get("location"):
            return _Redirect(response.headers["location"])
        if not 200 <= status < 300 and want is not _Want.ROBOTS:
            return Refusal(text, f"HTTP {status}", RefusalKind.HTTP_ERROR, page_url)
        media_type, charset = parse_content_type(response.headers.get("content-type"))
        unknown = media_type in UNKNOWN_TYPES
        if want is not _Want.ROBOTS:
            if is_image_type(media_type) or unknown:
                cap = self._image_cap
            elif not (want is _Want.ANY and is_html_type(media_type)):
                expected = "an image" if want is _Want.IMAGE else "an image or an HTML page"
                return Refusal(
                    text,
                    f"content type {media_type!r} is not {expected}",
                    RefusalKind.NOT_IMAGE,
                    page_url,
                )
        declared = _content_length(response)
        if declared is not None and declared > cap and want is not _Want.ROBOTS:
            return Refusal(
                text,
                f"declared size {declared} bytes exceeds the cap of {cap} bytes",
                RefusalKind.TOO_LARGE,
                page_url,
            )
        body = bytearray()
        sniffed = False
        async for chunk in response.aiter_bytes(_CHUNK):
            body += chunk
            if unknown and not sniffed and len(body) >= SNIFF_BYTES and want is not _Want.ROBOTS:
                sniffed = True
                found = sniff_image(bytes(body[:SNIFF_BYTES]))
                if found is None and not (want is _Want.ANY and _looks_like_html(body)):
                    return Refusal(
                        text, "content is not a recognised image", RefusalKind.NOT_IMAGE, page_url
                    )
            if len(body) > cap:
                if want is _Want.ROBOTS:
                    del body[cap:]
                    break
                return Refusal(
                    text,
                    f"body exceeds the cap of {cap} bytes (stopped reading)",
                    RefusalKind.TOO_LARGE,
                    page_url,
                )
        fetched_at = datetime.now(UTC)
        content = bytes(body)
        if unknown and want is not _Want.ROBOTS:
            found = sniff_image(content[:SNIFF_BYTES])
            if found is not None:
                media_type = found
            elif want is _Want.ANY and _looks_like_html(content):
                media_type = "text/html"
            else:
                return Refusal(
                    text, "content is not a recognised image", RefusalKind.NOT_IMAGE, page_url
                )
        return _Body(url, status, media_type, charset, content, fetched_at)


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None or response.headers.get("content-encoding", "identity") != "identity":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _looks_like_html(body: bytes | bytearray) -> bool:
    head = bytes(body[:512]).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE = object()


async def _merge(
    items: Iterable[T], fn: Callable[[T], AsyncIterator[R]], limit: int
) -> AsyncIterator[R]:
    """Run ``fn`` over ``items`` with at most ``limit`` running; yield results as they come."""
    source = iter(items)
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=2 * limit)

    async def worker() -> None:
        # On cancellation (the consumer stopped) nothing more is put: a put could block forever.
        try:
            for item in source:
                async for result in fn(item):
                    await queue.put(result)
        except Exception as exc:
            await queue.put(_Failed(exc))
            return
        await queue.put(_DONE)

    workers = [asyncio.create_task(worker()) for _ in range(limit)]
    finished = 0
    try:
        while finished < limit:
            got = await queue.get()
            if got is _DONE:
                finished += 1
            elif isinstance(got, _Failed):
                raise got.exc
            else:
                yield got  # type: ignore[misc]
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def fetch_urls_async(
    urls: Iterable[str],
    policy: SourcePolicy,
    settings: Settings,
    *,
    resolver: Resolver = system_resolver,
    max_concurrency: int = 16,
) -> AsyncGenerator[FetchedImage | Refusal, None]:
    """Collect every URL (image or HTML page) under ``policy``; results as they come."""
    async with Fetcher(
        policy, settings, resolver=resolver, max_concurrency=max_concurrency
    ) as fetcher:
        async for item in fetcher.fetch_many(urls):
            yield item


def fetch_urls(
    urls: Iterable[str],
    policy: SourcePolicy,
    settings: Settings,
    *,
    resolver: Resolver = system_resolver,
    max_concurrency: int = 16,
) -> Iterator[FetchedImage | Refusal]:
    """Blocking form of :func:`fetch_urls_async` for callers without an event loop.

    Runs its own event loop, advanced one result at a time, so results stream.
    Must not be called from inside a running event loop (use the async form there).
    """
    stream = fetch_urls_async(
        urls, policy, settings, resolver=resolver, max_concurrency=max_concurrency
    )

    async def step() -> FetchedImage | Refusal:
        return await anext(stream)

    with asyncio.Runner() as runner:
        try:
            while True:
                try:
                    item = runner.run(step())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            runner.run(stream.aclose())


__all__ = ["MAX_REDIRECTS", "Fetcher", "fetch_urls", "fetch_urls_async"]
