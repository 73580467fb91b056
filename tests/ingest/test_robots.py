"""robots.txt handling (RFC 9309) against a real local server."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from facetrace import Settings
from facetrace.ingest.fetch import FetchedImage, Refusal, RefusalKind, SourcePolicy, fetch_urls
from facetrace.ingest.fetch.robots import (
    ROBOTS_MAX_BYTES,
    RobotsCache,
    RobotsRules,
    RobotsStatus,
    decode_robots,
    product_token,
    rules_for_status,
)

if TYPE_CHECKING:
    from .conftest import Hit, LocalServer, _RequestHandler

Policy = Callable[..., SourcePolicy]


def _fetch(urls: list[str], policy: SourcePolicy, settings: Settings) -> dict[str, object]:
    """url -> FetchedImage or Refusal."""
    out: dict[str, object] = {}
    for item in fetch_urls(urls, policy, settings):
        key = item.image_url if isinstance(item, FetchedImage) else item.url
        out[key] = item
    return out


def test_disallowed_paths_are_refused_and_never_requested(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    server.add("/robots.txt", b"User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    ok = server.image("/public/a.jpg", jpeg)
    no = server.image("/private/b.jpg", jpeg)
    got = _fetch([ok, no], make_policy(), net_settings)
    assert isinstance(got[ok], FetchedImage)
    refusal = got[no]
    assert isinstance(refusal, Refusal) and refusal.kind is RefusalKind.ROBOTS
    assert server.hits_for("/private/b.jpg") == []
    assert len(server.hits_for("/robots.txt")) == 1  # cached for the second URL
    assert all(h.user_agent == net_settings.user_agent for h in server.hits)


def test_group_for_our_product_token_wins_over_star(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    server.add(
        "/robots.txt",
        b"User-agent: *\nAllow: /\n\nUser-agent: facetrace\nDisallow: /\n",
        content_type="text/plain",
    )
    url = server.image("/a.jpg", jpeg)
    (result,) = fetch_urls([url], make_policy(), net_settings)
    assert isinstance(result, Refusal) and result.kind is RefusalKind.ROBOTS
    assert product_token(net_settings.user_agent) == "facetrace"


def test_missing_robots_txt_404_allows_everything(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    url = server.image("/a.jpg", jpeg)  # no /robots.txt route: the server answers 404
    (result,) = fetch_urls([url], make_policy(), net_settings)
    assert isinstance(result, FetchedImage)
    assert server.paths() == ["/robots.txt", "/a.jpg"]


def test_robots_txt_503_disallows_everything(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    server.add("/robots.txt", b"busy", status=503, content_type="text/plain")
    url = server.image("/a.jpg", jpeg)
    (result,) = fetch_urls([url], make_policy(), net_settings)
    assert isinstance(result, Refusal) and result.kind is RefusalKind.ROBOTS
    assert "503" in result.reason
    assert server.hits_for("/a.jpg") == []


def test_robots_txt_timeout_disallows_everything(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    server.add("/robots.txt", b"User-agent: *\nAllow: /\n", delay=1.5, content_type="text/plain")
    url = server.image("/a.jpg", jpeg)
    start = time.monotonic()
    (result,) = fetch_urls([url], make_policy(timeout=0.3), net_settings)
    assert time.monotonic() - start < 1.4
    assert isinstance(result, Refusal) and result.kind is RefusalKind.ROBOTS
    assert server.hits_for("/a.jpg") == []


def test_robots_txt_network_error_disallows_everything(
    net_settings: Settings, make_policy: Policy
) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (result,) = fetch_urls([f"http://127.0.0.1:{port}/a.jpg"], make_policy(), net_settings)
    assert isinstance(result, Refusal) and result.kind is RefusalKind.ROBOTS
    assert "unreachable" in result.reason


def test_oversized_robots_txt_is_cut_at_500_kib(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    filler = b"# padding padding padding padding padding padding padding padding\n"
    body = b"User-agent: *\nDisallow: /early/\n"
    body += filler * (ROBOTS_MAX_BYTES // len(filler) + 100)
    body += b"Disallow: /late/\n"
    assert len(body) > ROBOTS_MAX_BYTES + 1000
    server.add("/robots.txt", body, content_type="text/plain")
    early = server.image("/early/a.jpg", jpeg)
    late = server.image("/late/b.jpg", jpeg)
    got = _fetch([early, late], make_policy(), net_settings)
    assert isinstance(got[early], Refusal)
    assert isinstance(got[late], FetchedImage)  # the rule past 500 KiB was not read


def test_robots_redirects_are_followed(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    server.redirect("/robots.txt", "/r1", status=301)
    server.redirect("/r1", "/r2")
    server.add("/r2", b"User-agent: *\nDisallow: /\n", content_type="text/plain")
    url = server.image("/a.jpg", jpeg)
    (result,) = fetch_urls([url], make_policy(), net_settings)
    assert isinstance(result, Refusal) and result.kind is RefusalKind.ROBOTS
    assert server.paths() == ["/robots.txt", "/r1", "/r2"]


def test_robots_redirect_chain_longer_than_five_counts_as_unavailable(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    server.redirect("/robots.txt", "/h1")
    for i in range(1, 8):
        server.redirect(f"/h{i}", f"/h{i + 1}")
    server.add("/h8", b"User-agent: *\nDisallow: /\n", content_type="text/plain")
    url = server.image("/a.jpg", jpeg)
    (result,) = fetch_urls([url], make_policy(), net_settings)
    assert isinstance(result, FetchedImage)
    assert server.hits_for("/h6") == []  # robots.txt + 5 hops, no more


def test_robots_redirect_to_a_private_address_disallows_everything(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    server.redirect("/robots.txt", "http://169.254.169.254/latest/meta-data/")
    url = server.image("/a.jpg", jpeg)
    (result,) = fetch_urls([url], make_policy(), net_settings)
    assert isinstance(result, Refusal) and result.kind is RefusalKind.ROBOTS
    assert "169.254.169.254" in result.reason


def test_crawl_delay_slows_requests_down(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    server.add("/robots.txt", b"User-agent: *\nCrawl-delay: 0.3\n", content_type="text/plain")
    urls = [server.image(f"/{i}.jpg", jpeg) for i in range(3)]
    results = list(fetch_urls(urls, make_policy(rate_limit=1000.0), net_settings))
    assert all(isinstance(r, FetchedImage) for r in results)
    times = sorted(h.at for h in server.hits if h.path != "/robots.txt")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.27


def test_cache_keeps_rules_at_most_24_hours() -> None:
    now = [0.0]
    cache = RobotsCache(ttl=48 * 3600, clock=lambda: now[0])
    cache.put("http://a.test:80", RobotsRules.allow_all("HTTP 404"))
    now[0] = 24 * 3600 - 1
    assert cache.get("http://a.test:80") is not None
    now[0] = 24 * 3600 + 1
    assert cache.get("http://a.test:80") is None


def test_unreachable_rules_expire_sooner() -> None:
    now = [0.0]
    cache = RobotsCache(clock=lambda: now[0], failure_ttl=300)
    cache.put("http://a.test:80", RobotsRules.disallow_all("HTTP 503"))
    now[0] = 301
    assert cache.get("http://a.test:80") is None


def test_status_mapping_follows_rfc_9309() -> None:
    assert rules_for_status(200) is None
    for code in (400, 401, 403, 404, 410):
        rules = rules_for_status(code)
        assert rules is not None and rules.status is RobotsStatus.UNAVAILABLE
        assert rules.can_fetch("http://a.test/x", "facetrace/0.1")
    for code in (429, 500, 502, 503):
        rules = rules_for_status(code)
        assert rules is not None and rules.status is RobotsStatus.UNREACHABLE
        assert not rules.can_fetch("http://a.test/x", "facetrace/0.1")


def test_decode_cuts_at_the_last_full_line() -> None:
    body = b"a" * (ROBOTS_MAX_BYTES - 3) + b"\nDisallow: /x\n"
    text = decode_robots(body)
    assert text.endswith("\n") and "Disallow" not in text
    assert len(text.encode()) <= ROBOTS_MAX_BYTES


def test_robots_body_read_stops_near_the_limit(
    server: LocalServer, net_settings: Settings, make_policy: Policy, jpeg: bytes
) -> None:
    """An endless robots.txt is read only up to the parse limit, then dropped."""

    def endless(handler: _RequestHandler, hit: Hit) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(b"User-agent: *\nDisallow: /no/\n")
        line = b"# " + b"x" * 1022 + b"\n"
        for _ in range(64 * 1024):  # 64 MiB if nobody stops it
            handler.wfile.write(line)
            hit.sent += len(line)

    server.handle("/robots.txt", endless)
    url = server.image("/no/a.jpg", jpeg)
    (result,) = fetch_urls([url], make_policy(), net_settings)
    assert isinstance(result, Refusal) and result.kind is RefusalKind.ROBOTS
    (hit,) = server.hits_for("/robots.txt")
    assert hit.done.wait(5)
    assert hit.sent < 16 * 1024 * 1024
