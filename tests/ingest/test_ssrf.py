"""SSRF guard: URL checks, address ranges, and connect-time checks against a real server."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

from facetrace import Settings
from facetrace.errors import UnsafeURLError
from facetrace.ingest.fetch import Refusal, RefusalKind, SourcePolicy, fetch_urls
from facetrace.ingest.fetch.ssrf import (
    GuardedTransport,
    IPAddress,
    check_ip,
    check_url,
    parse_ipv4_loose,
    resolve_checked,
)

if TYPE_CHECKING:
    from .conftest import LocalServer

LOOPBACK_SPELLINGS = [
    "2130706433",  # decimal
    "0x7f000001",  # hex
    "0x7f.1",  # hex, two parts
    "127.1",  # two parts
    "0177.0.0.1",  # octal first part
    "017700000001",  # octal whole
    "127.0.0.1",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_every_ipv4_spelling_of_loopback_parses_to_127_0_0_1(host: str) -> None:
    assert parse_ipv4_loose(host) == ipaddress.IPv4Address("127.0.0.1")


@pytest.mark.parametrize("host", ["example.com", "1e100.net", "cafe", "123.example.org"])
def test_hostnames_are_not_mistaken_for_addresses(host: str) -> None:
    assert parse_ipv4_loose(host) is None


@pytest.mark.parametrize("host", ["1.2.3.256", "1.2.3.4.5", "08.1.1.1", "0x1.0x100.1.1"])
def test_malformed_numeric_hosts_are_refused(host: str) -> None:
    with pytest.raises(UnsafeURLError):
        parse_ipv4_loose(host)


REFUSED_URLS = [
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://0x7f000001/x.jpg",
    "http://127.0.0.1/",
    "http://127.1/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://0/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.2.10/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://[ff02::1]/",
    "http://[::]/",
    "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://[2002:a9fe:a9fe::]/",  # 6to4 of 169.254.169.254
    "http://[2001:db8::1]/",
    "ftp://example.com/a.jpg",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "http://user:secret@example.com/a.jpg",
    "http:///nohost",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_unsafe_urls_are_refused_before_any_network_access(url: str) -> None:
    with pytest.raises(UnsafeURLError):
        check_url(url, allow_loopback=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/a.jpg",
        "http://93.184.215.14/",
        "http://[2606:4700:4700::1111]/",
        "http://[64:ff9b::808:808]/",  # NAT64 of a public address
        "https://bücher.example/x.jpg",
    ],
)
def test_public_urls_pass(url: str) -> None:
    assert check_url(url, allow_loopback=False).scheme in {"http", "https"}


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://127.9.8.7/", "http://[::1]/"])
def test_loopback_allowance_opens_loopback(url: str) -> None:
    check_url(url, allow_loopback=True)
    check_url("http://2130706433/", allow_loopback=True)


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "192.168.0.1",
        "172.31.255.255",
        "169.254.169.254",
        "100.100.100.100",
        "0.0.0.0",
        "224.0.0.251",
        "::ffff:127.0.0.1",
        "64:ff9b::7f00:1",
        "fc00::1",
        "fe80::1",
    ],
)
def test_loopback_allowance_opens_nothing_else(address: str) -> None:
    with pytest.raises(UnsafeURLError):
        check_ip(ipaddress.ip_address(address), allow_loopback=True)


def test_localhost_is_refused_after_resolution() -> None:
    with pytest.raises(UnsafeURLError, match="localhost"):
        asyncio.run(resolve_checked("localhost", 80, allow_loopback=False))
    allowed = asyncio.run(resolve_checked("localhost", 80, allow_loopback=True))
    assert all(a.is_loopback for a in allowed)


def test_a_name_with_any_private_address_is_refused() -> None:
    async def mixed(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.7")]

    with pytest.raises(UnsafeURLError, match=r"10\.0\.0\.7"):
        asyncio.run(resolve_checked("mixed.test", 80, allow_loopback=False, resolver=mixed))


def test_transport_refuses_at_connect_time(server: LocalServer, jpeg: bytes) -> None:
    """The connect hook alone (no URL pre-check) keeps a name resolving to loopback out."""
    url = server.image("/a.jpg", jpeg).replace("127.0.0.1", "localhost")

    async def get() -> None:
        transport = GuardedTransport(allow_loopback=False)
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get(url)

    with pytest.raises(UnsafeURLError):
        asyncio.run(get())
    assert server.hits == []


def test_transport_connects_to_the_checked_address_and_keeps_the_host_header(
    server: LocalServer, jpeg: bytes
) -> None:
    """A made-up name resolved by the guard's resolver reaches the server under its own name."""
    server.image("/a.jpg", jpeg)

    async def fake_dns(host: str, port: int) -> list[IPAddress]:
        assert host == "photos.test"
        return [ipaddress.ip_address("127.0.0.1")]

    async def get() -> httpx.Response:
        transport = GuardedTransport(allow_loopback=True, resolver=fake_dns)
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.get(f"http://photos.test:{server.port}/a.jpg")

    response = asyncio.run(get())
    assert response.content == jpeg
    assert [h.host for h in server.hits] == [f"photos.test:{server.port}"]


def test_dns_rebinding_between_check_and_connect_is_caught(
    server: LocalServer, strict_settings: Settings, jpeg: bytes
) -> None:
    """The first lookup says public, later ones say loopback: nothing reaches the server."""
    server.image("/a.jpg", jpeg)
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        first = len(calls) == 1
        return [ipaddress.ip_address("93.184.215.14" if first else "127.0.0.1")]

    url = f"http://rebind.test:{server.port}/a.jpg"
    results = list(fetch_urls([url], SourcePolicy(timeout=2), strict_settings, resolver=rebinding))
    assert len(calls) >= 2
    assert len(results) == 1 and isinstance(results[0], Refusal)
    assert "127.0.0.1" in results[0].reason
    assert server.hits == []


@pytest.mark.parametrize(
    "template",
    [
        "http://localhost:{port}/a.jpg",
        "http://127.0.0.1:{port}/a.jpg",
        "http://2130706433:{port}/a.jpg",
        "http://0x7f.1:{port}/a.jpg",
        "http://0177.0.0.1:{port}/a.jpg",
        "http://[::ffff:127.0.0.1]:{port}/a.jpg",
    ],
)
def test_fetcher_refuses_loopback_without_the_allowance(
    server: LocalServer,
    strict_settings: Settings,
    make_policy: Callable[..., SourcePolicy],
    jpeg: bytes,
    template: str,
) -> None:
    server.image("/a.jpg", jpeg)
    results = list(fetch_urls([template.format(port=server.port)], make_policy(), strict_settings))
    assert len(results) == 1
    refusal = results[0]
    assert isinstance(refusal, Refusal)
    assert refusal.kind in {RefusalKind.UNSAFE_URL, RefusalKind.INVALID_URL}
    assert server.hits == []
