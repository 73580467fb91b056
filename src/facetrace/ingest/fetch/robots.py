"""robots.txt rules as RFC 9309 defines them, parsed with Protego, and their cache.

How a robots.txt fetch outcome becomes rules (the fetcher does the fetching):

==============================  ==================================================
outcome                         rules
==============================  ==================================================
2xx                             parse the first :data:`ROBOTS_MAX_BYTES` (500 KiB)
3xx                             follow, at most :data:`ROBOTS_MAX_REDIRECTS` (5) hops;
                                more (or a loop) = unavailable = allow all
4xx (404, 403, 410...)          unavailable: allow all (RFC 9309 §2.3.1.3)
429, 5xx, other                 unreachable: disallow all (§2.3.1.4)
network error, timeout, SSRF    unreachable: disallow all
==============================  ==================================================

Rules are cached per origin (scheme, host, port) for at most 24 hours
(§2.4); an "unreachable" result is cached for a shorter time so that the
site is asked again soon.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import httpx
from protego import Protego

#: Bytes of robots.txt parsed (RFC 9309 §2.5: at least 500 KiB).
ROBOTS_MAX_BYTES = 500 * 1024
#: Redirect hops followed for robots.txt (RFC 9309 §2.3.1.2: at least five).
ROBOTS_MAX_REDIRECTS = 5
#: Longest time a robots.txt is cached, seconds (RFC 9309 §2.4).
ROBOTS_MAX_TTL = 24 * 3600.0
#: How long "unreachable, disallow all" is cached, seconds.
ROBOTS_FAILURE_TTL = 300.0


class RobotsStatus(StrEnum):
    """What the robots.txt fetch gave."""

    PARSED = "parsed"  # a robots.txt was read and parsed
    UNAVAILABLE = "unavailable"  # 4xx or too many redirects: allow all
    UNREACHABLE = "unreachable"  # 5xx, network error, timeout: disallow all


def product_token(user_agent: str) -> str:
    """The product token robots.txt groups match: ``facetrace/0.1 (...)`` -> ``facetrace``."""
    token = user_agent.strip().split("/", 1)[0].split(" ", 1)[0]
    return token or user_agent


def robots_url(url: httpx.URL) -> httpx.URL:
    """The robots.txt URL for the origin of ``url``."""
    return url.copy_with(path="/robots.txt", query=None, fragment=None)


def origin_key(url: httpx.URL) -> str:
    """``scheme://host:port``: the scope one robots.txt applies to."""
    return f"{url.scheme}://{url.raw_host.decode('ascii')}:{url.port or _default_port(url)}"


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


def decode_robots(body: bytes) -> str:
    """Decode a robots.txt body, cut to :data:`ROBOTS_MAX_BYTES` at the last full line."""
    if len(body) > ROBOTS_MAX_BYTES:
        body = body[:ROBOTS_MAX_BYTES]
        cut = body.rfind(b"\n")
        body = body[: cut + 1] if cut >= 0 else b""
    return body.decode("utf-8", errors="replace").lstrip("\ufeff")


@dataclass(frozen=True)
class RobotsRules:
    """The rules of one origin.

    Attributes:
        status: parsed, unavailable (allow all) or unreachable (disallow all).
        detail: one line on how they were obtained, e.g. ``HTTP 503``.
        parser: the Protego parser when ``status`` is PARSED.
    """

    status: RobotsStatus
    detail: str
    parser: Protego | None = None

    @classmethod
    def parsed(cls, body: bytes, detail: str = "HTTP 200") -> RobotsRules:
        """Rules from a robots.txt body (only the first 500 KiB are read)."""
        return cls(RobotsStatus.PARSED, detail, Protego.parse(decode_robots(body)))

    @classmethod
    def allow_all(cls, detail: str) -> RobotsRules:
        """Rules of an origin whose robots.txt is unavailable (4xx)."""
        return cls(RobotsStatus.UNAVAILABLE, detail)

    @classmethod
    def disallow_all(cls, detail: str) -> RobotsRules:
        """Rules of an origin whose robots.txt is unreachable (5xx, network error)."""
        return cls(RobotsStatus.UNREACHABLE, detail)

    def can_fetch(self, url: str, user_agent: str) -> bool:
        """True when ``user_agent`` (a full User-Agent or its product token) may fetch ``url``."""
        if self.status is RobotsStatus.UNAVAILABLE:
            return True
        if self.status is RobotsStatus.UNREACHABLE or self.parser is None:
            return False
        return bool(self.parser.can_fetch(url, product_token(user_agent)))

    def crawl_delay(self, user_agent: str) -> float | None:
        """Seconds between requests the site asks of this user agent, or None."""
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(product_token(user_agent))
        return None if delay is None else float(delay)


class RobotsCache:
    """Robots rules per origin, each kept at most ``ttl`` seconds (24 h cap).

    Args:
        ttl: lifetime of parsed / unavailable rules, seconds; capped at 24 h.
        failure_ttl: lifetime of "unreachable" (disallow all) rules, seconds.
        clock: monotonic clock in seconds, injectable for tests.
    """

    def __init__(
        self,
        ttl: float = ROBOTS_MAX_TTL,
        failure_ttl: float = ROBOTS_FAILURE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = min(ttl, ROBOTS_MAX_TTL)
        self._failure_ttl = min(failure_ttl, self._ttl)
        self._clock = clock
        self._entries: dict[str, tuple[float, RobotsRules]] = {}

    def get(self, origin: str) -> RobotsRules | None:
        """Cached rules of ``origin`` (see :func:`origin_key`), or None if absent or expired."""
        entry = self._entries.get(origin)
        if entry is None:
            return None
        expires, rules = entry
        if self._clock() >= expires:
            del self._entries[origin]
            return None
        return rules

    def put(self, origin: str, rules: RobotsRules) -> None:
        """Cache ``rules`` for ``origin``."""
        ttl = self._failure_ttl if rules.status is RobotsStatus.UNREACHABLE else self._ttl
        self._entries[origin] = (self._clock() + ttl, rules)

    def __len__(self) -> int:
        return len(self._entries)


def rules_for_status(status_code: int) -> RobotsRules | None:
    """Rules implied by a non-2xx, non-redirect status; None for 2xx (parse the body)."""
    if 200 <= status_code < 300:
        return None
    if status_code == 429:
        return RobotsRules.disallow_all("HTTP 429 (treated as unreachable)")
    if 400 <= status_code < 500:
        return RobotsRules.allow_all(f"HTTP {status_code} (unavailable: all allowed)")
    return RobotsRules.disallow_all(f"HTTP {status_code} (unreachable: all disallowed)")


__all__ = [
    "ROBOTS_FAILURE_TTL",
    "ROBOTS_MAX_BYTES",
    "ROBOTS_MAX_REDIRECTS",
    "ROBOTS_MAX_TTL",
    "RobotsCache",
    "RobotsRules",
    "RobotsStatus",
    "decode_robots",
    "origin_key",
    "product_token",
    "robots_url",
    "rules_for_status",
]
