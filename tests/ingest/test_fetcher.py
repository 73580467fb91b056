"""The fetcher against a real local web server: pages, images, redirects, limits, deny list."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from facetrace import Settings
from facetrace.errors import ConfigError, NotFoundError, UsageError
from facetrace.ingest.fetch import (
    FetchedImage,
    Fetcher,
    Refusal,
    RefusalKind,
    SourcePolicy,
    fetch_urls,
)
from facetrace.ingest.fetch.html import extract_links, largest_srcset_candidate
from facetrace.ingest.fetch.policy import host_matches
from facetrace.ingest.fetch.ssrf import IPAddress
from facetrace.ingest.urllist import fetch_url_list, read_url_list

if TYPE_CHECKING:
    from .conftest import Hit, LocalServer, _RequestHandler

Policy = Callable[..., SourcePolicy]
Item = FetchedImage | Refusal


def _images(items: list[Item]) -> dict[str, FetchedImage]:
    return {i.image_url: i for i in items if isinstance(i, FetchedImage)}


def _refusals(items: list[Item]) -> dict[str, Refusal]:
    return {i.url: i for i in items if isinstance(i, Refusal)}


# --- images ------------------------------------------------------------------


def test_an_image_url_gives_its_bytes_and_provenance(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    url = server.image("/photos/a.jpg", jpeg)
    before = datetime.now(UTC)
    (item,) = fetch_urls([url], make_policy(), net_settings)
    assert isinstance(item, FetchedImage)
    assert item.content == jpeg
    assert item.image_url == url and item.page_url is None
    assert item.content_type == "image/jpeg"
    assert item.fetched_at.tzinfo is not None
    assert before <= item.fetched_at <= datetime.now(UTC) + timedelta(seconds=1)


def test_unlabelled_bytes_are_sniffed(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    good = server.add("/blob", jpeg, content_type="application/octet-stream")
    bad = server.add("/zip", b"PK\x03\x04" + b"\0" * 100, content_type="application/octet-stream")
    text = server.add("/notes.txt", b"hello", content_type="text/plain")
    items = list(fetch_urls([good, bad, text], make_policy(), net_settings))
    assert _images(items)[good].content_type == "image/jpeg"
    refusals = _refusals(items)
    assert refusals[bad].kind is RefusalKind.NOT_IMAGE
    assert refusals[text].kind is RefusalKind.NOT_IMAGE


def test_http_errors_are_refusals(
    server: LocalServer, net_settings: Settings, make_policy: Policy
) -> None:
    gone = server.url("/missing.jpg")
    broken = server.add("/broken.jpg", b"oops", status=500, content_type="text/plain")
    refusals = _refusals(list(fetch_urls([gone, broken], make_policy(), net_settings)))
    assert refusals[gone].kind is RefusalKind.HTTP_ERROR and "404" in refusals[gone].reason
    assert refusals[broken].kind is RefusalKind.HTTP_ERROR and "500" in refusals[broken].reason


# --- pages -------------------------------------------------------------------

PAGE = """<!doctype html><html><head>
<meta property="og:image" content="/img/og.jpg">
<title>people</title></head><body>
<img src="/img/plain.jpg" alt="">
<img src="/img/small.jpg" srcset="/img/small.jpg 1x, /img/large.jpg 2x">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<img src="/other/outside.jpg">
<img src="https://pbs.twimg.com/media/x.jpg">
<a href="/people/page2.html">next</a>
<a href="https://www.facebook.com/someone">fb</a>
</body></html>"""

PAGE2 = '<html><body><img src="/img/deep.jpg"></body></html>'


def _site(server: LocalServer, jpeg: bytes) -> str:
    for name in ("og", "plain", "small", "large", "deep"):
        server.image(f"/img/{name}.jpg", jpeg)
    server.image("/other/outside.jpg", jpeg)
    server.html("/people/page2.html", PAGE2)
    return server.html("/people/index.html", PAGE)


def test_a_page_gives_its_images_within_scope(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    page = _site(server, jpeg)
    scope = (server.url("/people/"), server.url("/img/"))
    items = list(fetch_urls([page], make_policy(url_prefixes=scope), net_settings))
    images = _images(items)
    assert set(images) == {server.url(f"/img/{n}.jpg") for n in ("og", "plain", "large")}
    assert all(i.page_url == page and i.content == jpeg for i in images.values())
    refusals = _refusals(items)
    assert refusals[server.url("/other/outside.jpg")].kind is RefusalKind.OUT_OF_SCOPE
    assert refusals[server.url("/other/outside.jpg")].page_url == page
    assert refusals["https://pbs.twimg.com/media/x.jpg"].kind is RefusalKind.DENIED_HOST
    assert len(refusals) == 2  # links are not reported, only images
    # depth 0: the linked page is not fetched; out-of-scope images are not requested
    assert server.hits_for("/people/page2.html") == []
    assert server.hits_for("/other/outside.jpg") == []
    assert server.hits_for("/img/small.jpg") == []  # the largest srcset candidate is taken


def test_depth_one_follows_links_in_scope(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    page = _site(server, jpeg)
    scope = (server.url("/people/"), server.url("/img/"))
    policy = make_policy(url_prefixes=scope, max_depth=1)
    images = _images(list(fetch_urls([page], policy, net_settings)))
    deep = images[server.url("/img/deep.jpg")]
    assert deep.page_url == server.url("/people/page2.html")
    assert len(images) == 4


def test_crawl_budget_stops_the_crawl(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    links = "".join(f'<a href="/p{i}.html">{i}</a>' for i in range(5))
    start = server.html("/start.html", links)
    for i in range(5):
        server.html(f"/p{i}.html", "<p>nothing</p>")
    items = list(fetch_urls([start], make_policy(max_depth=1, max_pages=3), net_settings))
    assert [i.kind for i in items if isinstance(i, Refusal)] == [RefusalKind.CRAWL_BUDGET]
    assert len([p for p in server.paths() if p.startswith("/p")]) == 2


def test_html_extraction() -> None:
    found = extract_links(
        '<base href="https://cdn.example/base/"><img srcset="a.jpg 480w, b.jpg 1200w, c.jpg 800w">'
        '<meta name="twitter:image" content="//img.example/t.png"><a href="#top">x</a>'
        '<a href="page.html#frag">p</a><a href="mailto:a@b.c">m</a>',
        "https://site.example/dir/index.html",
    )
    assert found.images == ("https://cdn.example/base/b.jpg", "https://img.example/t.png")
    assert found.links == (
        "https://cdn.example/base/",
        "https://cdn.example/base/page.html",
    )
    assert largest_srcset_candidate("x.jpg, y.jpg 3x, z.jpg 2x") == "y.jpg"
    assert largest_srcset_candidate("") is None


# --- redirects ---------------------------------------------------------------


def test_redirects_are_followed_and_the_requested_url_kept(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    server.image("/real.jpg", jpeg)
    start = server.redirect("/short", "/hop")
    server.redirect("/hop", server.url("/real.jpg"), status=307)
    (item,) = fetch_urls([start], make_policy(), net_settings)
    assert isinstance(item, FetchedImage) and item.image_url == start
    assert server.paths()[-3:] == ["/short", "/hop", "/real.jpg"]


def test_redirect_loops_and_long_chains_are_refused(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    loop = server.redirect("/a", "/b")
    server.redirect("/b", "/a")
    chain = server.redirect("/c0", "/c1")
    for i in range(1, 7):
        server.redirect(f"/c{i}", f"/c{i + 1}")
    server.image("/c7", jpeg)
    five = server.redirect("/f0", "/f1")
    for i in range(1, 5):
        server.redirect(f"/f{i}", f"/f{i + 1}")
    server.image("/f5", jpeg)
    items = list(fetch_urls([loop, chain, five], make_policy(), net_settings))
    refusals = _refusals(items)
    assert refusals[loop].kind is RefusalKind.REDIRECT_LOOP
    assert refusals[chain].kind is RefusalKind.TOO_MANY_REDIRECTS
    assert server.hits_for("/c6") == []  # the 6th redirect is not followed
    assert five in _images(items)  # exactly 5 redirects are fine


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", RefusalKind.UNSAFE_URL),
        ("http://10.0.0.1/a.jpg", RefusalKind.UNSAFE_URL),
        ("http://[::ffff:127.0.0.1]:{port}/real.jpg", RefusalKind.UNSAFE_URL),
        ("http://[fd00::1]/a.jpg", RefusalKind.UNSAFE_URL),
        ("ftp://example.com/a.jpg", RefusalKind.UNSAFE_URL),
        ("https://www.facebook.com/a.jpg", RefusalKind.DENIED_HOST),
    ],
)
def test_redirects_are_checked_again(
    server: LocalServer,
    net_settings: Settings,
    make_policy: Policy,
    jpeg: bytes,
    location: str,
    kind: RefusalKind,
) -> None:
    server.image("/real.jpg", jpeg)
    start = server.redirect("/go", location.format(port=server.port))
    (item,) = fetch_urls([start], make_policy(), net_settings)
    assert isinstance(item, Refusal) and item.kind is kind
    assert server.hits_for("/real.jpg") == []


def test_a_name_resolving_to_loopback_is_refused_without_the_allowance(
    server: LocalServer, strict_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    """``public.test`` resolves (test resolver) to the local server, allowance off.

    A redirect into loopback cannot be staged from a public server here, so this
    pins the part that matters: with the allowance off no hop, first or later,
    ever reaches a loopback address (redirect re-checks: the test above)."""
    server.image("/real.jpg", jpeg)
    server.redirect("/go", server.url("/real.jpg"))

    async def dns(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("127.0.0.1")]

    url = f"http://public.test:{server.port}/go"
    (item,) = fetch_urls([url], make_policy(), strict_settings, resolver=dns)
    assert isinstance(item, Refusal) and item.kind is RefusalKind.UNSAFE_URL
    assert server.hits == []


# --- limits ------------------------------------------------------------------


def test_slow_server_times_out(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    url = server.add("/slow.jpg", jpeg, content_type="image/jpeg", delay=2.0)
    start = time.monotonic()
    (item,) = fetch_urls([url], make_policy(timeout=0.4), net_settings)
    assert time.monotonic() - start < 1.5
    assert isinstance(item, Refusal) and item.kind is RefusalKind.TIMEOUT


def test_trickling_body_hits_the_whole_request_timeout(
    server: LocalServer, net_settings: Settings, make_policy: Policy
) -> None:
    """Each byte arrives well within a read timeout, but the whole takes too long."""

    def trickle(handler: _RequestHandler, hit: Hit) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b"\xff")
            handler.wfile.flush()
            time.sleep(0.05)

    url = server.handle("/trickle.jpg", trickle)
    start = time.monotonic()
    (item,) = fetch_urls([url], make_policy(timeout=0.6), net_settings)
    assert time.monotonic() - start < 2.0
    assert isinstance(item, Refusal) and item.kind is RefusalKind.TIMEOUT


def _endless(total: int) -> Callable[[_RequestHandler, Hit], None]:
    def handler(h: _RequestHandler, hit: Hit) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "image/jpeg")
        h.send_header("Connection", "close")  # no Content-Length: the cap must stop it
        h.end_headers()
        block = b"\xff\xd8\xff" + b"\0" * (64 * 1024 - 3)
        while hit.sent < total:
            h.wfile.write(block)
            hit.sent += len(block)

    return handler


def test_huge_body_is_cut_at_the_byte_cap(
    server: LocalServer, net_settings: Settings, make_policy: Policy
) -> None:
    total = 512 * 1024 * 1024
    url = server.handle("/huge.jpg", _endless(total))
    (item,) = fetch_urls([url], make_policy(max_bytes=1024 * 1024), net_settings)
    assert isinstance(item, Refusal) and item.kind is RefusalKind.TOO_LARGE
    (hit,) = server.hits_for("/huge.jpg")
    assert hit.done.wait(5), "the server was still sending: the client did not hang up"
    assert hit.sent < 64 * 1024 * 1024  # far less than the 512 MiB on offer


def test_declared_size_over_the_cap_is_refused_before_reading(
    server: LocalServer, net_settings: Settings, make_policy: Policy
) -> None:
    def declared(h: _RequestHandler, hit: Hit) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "image/jpeg")
        h.send_header("Content-Length", str(10**9))
        h.end_headers()
        block = b"\0" * (64 * 1024)
        while hit.sent < 10**9:
            h.wfile.write(block)
            hit.sent += len(block)

    url = server.handle("/big.jpg", declared)
    (item,) = fetch_urls([url], make_policy(max_bytes=1024 * 1024), net_settings)
    assert isinstance(item, Refusal) and item.kind is RefusalKind.TOO_LARGE
    assert "declared" in item.reason
    (hit,) = server.hits_for("/big.jpg")
    assert hit.done.wait(5)
    assert hit.sent < 64 * 1024 * 1024


def test_settings_image_cap_applies_too(
    server: LocalServer, tmp_path: Path, make_policy: Policy, jpeg: bytes
) -> None:
    settings = Settings(home=tmp_path, allow_loopback=True, max_image_bytes=len(jpeg) - 1)
    url = server.image("/a.jpg", jpeg)
    (item,) = fetch_urls([url], make_policy(), settings)
    assert isinstance(item, Refusal) and item.kind is RefusalKind.TOO_LARGE


def test_rate_limit_spaces_requests_to_a_host(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    urls = [server.image(f"/{i}.jpg", jpeg) for i in range(5)]
    policy = make_policy(rate_limit=8.0, max_concurrency_per_host=4)
    items = list(fetch_urls(urls, policy, net_settings))
    assert len(_images(items)) == 5
    times = sorted(h.at for h in server.hits)  # robots.txt counts as a request too
    assert len(times) == 6
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.125 - 0.01
    assert times[-1] - times[0] >= 5 * 0.125 - 0.02


def test_per_host_concurrency_is_capped(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    urls = [server.add(f"/{i}.jpg", jpeg, content_type="image/jpeg", delay=0.2) for i in range(6)]
    items = list(fetch_urls(urls, make_policy(max_concurrency_per_host=2), net_settings))
    assert len(_images(items)) == 6
    assert server.max_in_flight == 2


# --- deny list and scope -----------------------------------------------------

DENIED = [
    "https://pbs.twimg.com/x.jpg",
    "https://www.facebook.com/a.jpg",
    "http://sub.instagram.com/p.jpg",
    "https://x.com/u/photo.jpg",
    "https://WWW.YouTube.com./a.jpg",
    "https://i.ytimg.com/vi/a/0.jpg",
    "https://scontent.xx.fbcdn.net/a.jpg",
    "https://media.licdn.com/a.jpg",
    "https://venmo.com/a.jpg",
    "https://scontent.cdninstagram.com/a.jpg",
]


def test_denied_hosts_are_refused_without_network_access(
    net_settings: Settings, make_policy: Policy
) -> None:
    lookups: list[str] = []

    async def no_dns(host: str, port: int) -> list[IPAddress]:
        lookups.append(host)
        raise AssertionError("the deny list must refuse before any lookup")

    # Even a scope that names these hosts cannot lift the deny list.
    policy = make_policy(allowed_hosts=frozenset({"facebook.com", "twimg.com", "x.com"}))
    items = list(fetch_urls(DENIED, policy, net_settings, resolver=no_dns))
    assert len(items) == len(DENIED)
    assert all(isinstance(i, Refusal) and i.kind is RefusalKind.DENIED_HOST for i in items)
    assert lookups == []


def test_host_matching_is_by_label() -> None:
    assert host_matches("a.b.facebook.com", "facebook.com")
    assert host_matches("FACEBOOK.COM.", "facebook.com")
    assert not host_matches("notfacebook.com", "facebook.com")
    assert not host_matches("facebook.com.evil.org", "facebook.com")


def test_scope_by_host_and_prefix(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    inside = server.image("/in/a.jpg", jpeg)
    outside = server.image("/out/b.jpg", jpeg)
    other_host = f"http://localhost:{server.port}/in/c.jpg"
    policy = make_policy(allowed_hosts=frozenset({"127.0.0.1"}), url_prefixes=(server.url("/in/"),))
    items = list(fetch_urls([inside, outside, other_host], policy, net_settings))
    assert set(_images(items)) == {inside}
    refusals = _refusals(items)
    assert refusals[outside].kind is RefusalKind.OUT_OF_SCOPE
    assert refusals[other_host].kind is RefusalKind.OUT_OF_SCOPE


def test_policy_validation() -> None:
    with pytest.raises(ConfigError):
        SourcePolicy(rate_limit=0)
    with pytest.raises(ConfigError):
        SourcePolicy(allowed_hosts="example.com")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        SourcePolicy(url_prefixes=("example.com/photos",))
    policy = SourcePolicy(url_prefixes=("https://A.org",))
    import httpx

    full = SourcePolicy(
        allowed_hosts=frozenset({"b.org", "a.org"}), url_prefixes=("https://a.org/p/",), max_depth=2
    )
    assert SourcePolicy.from_dict(full.as_dict()) == full
    with pytest.raises(ConfigError, match="colour"):
        SourcePolicy.from_dict({"colour": "red"})

    assert policy.in_scope(httpx.URL("https://a.org/x.jpg"))
    assert not policy.in_scope(httpx.URL("https://a.org.evil.net/x.jpg"))


# --- URL lists and the async API ---------------------------------------------


def test_read_url_list(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    path.write_text(
        "\ufeff# photos\nhttps://a.example/1.jpg\n\n  https://a.example/2.jpg  # second\n"
        "https://a.example/page.html#section\nhttps://a.example/1.jpg\n",
        encoding="utf-8",
    )
    assert read_url_list(path) == [
        "https://a.example/1.jpg",
        "https://a.example/2.jpg",
        "https://a.example/page.html#section",
    ]
    path.write_text("https://a.example/1.jpg https://a.example/2.jpg\n")
    with pytest.raises(UsageError, match=":1:"):
        read_url_list(path)
    with pytest.raises(NotFoundError):
        read_url_list(tmp_path / "nope.txt")


def test_fetch_url_list_mixes_images_pages_and_refusals(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes, tmp_path: Path
) -> None:
    image = server.image("/a.jpg", jpeg)
    server.image("/b.jpg", jpeg)
    page = server.html("/p.html", '<img src="/b.jpg">')
    path = tmp_path / "urls.txt"
    path.write_text(f"{image}\n{page}\nhttps://www.instagram.com/p/1.jpg\nnot a url\n")

    async def collect() -> list[Item]:
        return [item async for item in fetch_url_list(path, make_policy(), net_settings)]

    with pytest.raises(UsageError):  # "not a url" has two words
        asyncio.run(collect())
    path.write_text(f"{image}\n{page}\nhttps://www.instagram.com/p/1.jpg\nhttp//bad\n")
    items = asyncio.run(collect())
    images = _images(items)
    assert images[image].page_url is None
    assert images[server.url("/b.jpg")].page_url == page
    kinds = {r.url: r.kind for r in _refusals(items).values()}
    assert kinds["https://www.instagram.com/p/1.jpg"] is RefusalKind.DENIED_HOST
    assert kinds["http//bad"] in {RefusalKind.INVALID_URL, RefusalKind.UNSAFE_URL}


def test_fetcher_context_manager_and_single_image(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    url = server.image("/a.jpg", jpeg)

    async def run() -> Item:
        async with Fetcher(make_policy(), net_settings) as fetcher:
            return await fetcher.fetch_image(url, page_url="https://example.org/p")

    item = asyncio.run(run())
    assert isinstance(item, FetchedImage) and item.page_url == "https://example.org/p"


def test_stopping_early_closes_cleanly(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    urls = [server.image(f"/{i}.jpg", jpeg) for i in range(10)]
    stream = fetch_urls(urls, make_policy(), net_settings)
    first = next(stream)
    stream.close()
    assert isinstance(first, FetchedImage)
