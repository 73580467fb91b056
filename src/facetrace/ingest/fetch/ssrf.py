"""SSRF guard: only public addresses, checked at connect time.

Two layers, both raising :class:`~facetrace.errors.UnsafeURLError`:

1. :func:`check_url` looks at the URL alone, before any network access: the
   scheme must be ``http`` or ``https``, there must be no credentials, and a host
   written as an IP address (including the legacy ``inet_aton`` spellings
   ``2130706433``, ``0177.0.0.1``, ``0x7f.1``) must be public.
2. :class:`GuardedNetworkBackend` is the httpcore network backend of every
   connection the fetcher opens. It resolves the host itself, checks *every*
   resolved address with :func:`check_ip`, and connects to the address it
   checked, so DNS rebinding cannot swap it between check and connect. The URL,
   the ``Host`` header and TLS SNI / certificate checks still use the hostname.

Redirects are followed by the fetcher one hop at a time, so both layers run
again for every hop.

``allow_loopback`` lets 127.0.0.0/8 and ``::1`` through (tests, local use) and
nothing else: private, link-local, CGNAT, multicast, reserved, unique-local and
loopback *embedded* in IPv4-mapped / NAT64 / 6to4 addresses stay refused.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import httpcore
import httpx

from facetrace.errors import UnsafeURLError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: An async resolver: (host, port) -> the addresses a connection may go to.
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]

ALLOWED_SCHEMES = frozenset({"http", "https"})

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

#: IPv4 ranges never reachable by the fetcher (loopback handled separately).
BLOCKED_V4: tuple[ipaddress.IPv4Network, ...] = (
    _V4("0.0.0.0/8"),  # "this network"
    _V4("10.0.0.0/8"),  # RFC 1918
    _V4("100.64.0.0/10"),  # CGNAT, RFC 6598
    _V4("169.254.0.0/16"),  # link-local, incl. 169.254.169.254 cloud metadata
    _V4("172.16.0.0/12"),  # RFC 1918
    _V4("192.0.0.0/24"),  # IETF protocol assignments
    _V4("192.0.2.0/24"),  # TEST-NET-1
    _V4("192.88.99.0/24"),  # 6to4 relay anycast
    _V4("192.168.0.0/16"),  # RFC 1918
    _V4("198.18.0.0/15"),  # benchmarking
    _V4("198.51.100.0/24"),  # TEST-NET-2
    _V4("203.0.113.0/24"),  # TEST-NET-3
    _V4("224.0.0.0/4"),  # multicast
    _V4("240.0.0.0/4"),  # reserved, incl. 255.255.255.255
)
LOOPBACK_V4 = _V4("127.0.0.0/8")

#: IPv6 ranges never reachable (the embedding ranges are checked separately).
BLOCKED_V6: tuple[ipaddress.IPv6Network, ...] = (
    _V6("::/96"),  # unspecified and deprecated IPv4-compatible (::1 handled separately)
    _V6("64:ff9b:1::/48"),  # local-use NAT64
    _V6("100::/64"),  # discard-only
    _V6("2001::/23"),  # IETF protocol assignments, incl. Teredo 2001::/32
    _V6("2001:db8::/32"),  # documentation
    _V6("fc00::/7"),  # unique local
    _V6("fe80::/10"),  # link-local
    _V6("fec0::/10"),  # deprecated site-local
    _V6("ff00::/8"),  # multicast
)
LOOPBACK_V6 = ipaddress.IPv6Address("::1")
_NAT64 = _V6("64:ff9b::/96")
_SIX_TO_FOUR = _V6("2002::/16")

_IPV4_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$")
_NUMERIC_LOOKING = re.compile(r"^[0-9a-fA-FxX.]+$")


def parse_ipv4_loose(host: str) -> ipaddress.IPv4Address | None:
    """Parse ``host`` the way ``inet_aton`` does, or return None if it is not an IPv4 spelling.

    Accepts 1 to 4 dot-separated parts, each decimal, octal (leading ``0``) or hex
    (``0x``); the last part fills the remaining bytes. ``2130706433``,
    ``0177.0.0.1`` and ``0x7f.1`` all give 127.0.0.1. Raises UnsafeURLError for a
    host that looks numeric but is not a valid spelling (``0x7f.1.2.3.4``, ``1.2.3.256``).
    """
    text = host.rstrip(".")
    if not text or not any(c.isdigit() for c in text) or not _NUMERIC_LOOKING.match(text):
        return None
    parts = text.split(".")
    if not all(_IPV4_PART.match(p) for p in parts):
        # Hex-looking hostnames such as "cafe.example" never reach here (they fail
        # _NUMERIC_LOOKING on the letters past f); "deadbeef" alone is not an inet_aton
        # spelling either and is left to DNS + the connect-time check.
        if all(re.fullmatch(r"[0-9.]+", p) for p in parts):
            raise UnsafeURLError(f"host {host!r} is a malformed IP address")
        return None
    if len(parts) > 4:
        raise UnsafeURLError(f"host {host!r} is a malformed IP address")
    values: list[int] = []
    for part in parts:
        if part[:2].lower() == "0x":
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part[0] == "0":
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise UnsafeURLError(f"host {host!r} is a malformed IP address")
    number = 0
    for v in head:
        number = number * 256 + v
    number = number * 256 ** (5 - len(values)) + last
    return ipaddress.IPv4Address(number)


def _blocked_reason(ip: IPAddress, *, allow_loopback: bool) -> str | None:
    if isinstance(ip, ipaddress.IPv4Address):
        if ip in LOOPBACK_V4:
            return None if allow_loopback else "loopback"
        for net in BLOCKED_V4:
            if ip in net:
                return f"in blocked range {net}"
        return None if ip.is_global else "not a global address"
    if ip == LOOPBACK_V6:
        return None if allow_loopback else "loopback"
    embedded: ipaddress.IPv4Address | None = None
    if ip.ipv4_mapped is not None:
        embedded = ip.ipv4_mapped
    elif ip in _NAT64:
        embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    elif ip in _SIX_TO_FOUR:
        embedded = ip.sixtofour
    if embedded is not None:
        # Loopback hidden inside an IPv6 address is never allowed.
        inner = _blocked_reason(embedded, allow_loopback=False)
        return None if inner is None else f"embeds {embedded} ({inner})"
    for net6 in BLOCKED_V6:
        if ip in net6:
            return f"in blocked range {net6}"
    return None if ip.is_global else "not a global address"


def check_ip(ip: IPAddress, *, allow_loopback: bool = False) -> None:
    """Raise UnsafeURLError unless ``ip`` is a public unicast address.

    With ``allow_loopback`` 127.0.0.0/8 and ``::1`` pass too; nothing else does.
    """
    reason = _blocked_reason(ip, allow_loopback=allow_loopback)
    if reason is not None:
        raise UnsafeURLError(f"address {ip} is not allowed: {reason}")


def is_public_ip(ip: IPAddress, *, allow_loopback: bool = False) -> bool:
    """True when :func:`check_ip` would let ``ip`` through."""
    return _blocked_reason(ip, allow_loopback=allow_loopback) is None


def ip_literal(host: str) -> IPAddress | None:
    """The address a URL host spells directly (IPv6 literal or any IPv4 spelling), else None."""
    bare = host.strip("[]")
    if ":" in bare:
        try:
            return ipaddress.IPv6Address(bare.split("%", 1)[0])
        except ValueError as exc:
            raise UnsafeURLError(f"host {host!r} is a malformed IPv6 address") from exc
    return parse_ipv4_loose(bare)


def check_url(url: str | httpx.URL, *, allow_loopback: bool = False) -> httpx.URL:
    """Check a URL before any network access and return it parsed.

    Raises UnsafeURLError for a scheme other than http/https, a missing host,
    credentials in the URL, or a host that spells a non-public IP address.
    Hostnames are checked again after resolution by :class:`GuardedNetworkBackend`.
    """
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UnsafeURLError(f"invalid URL {str(url)[:200]!r}: {exc}") from exc
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise UnsafeURLError(f"scheme {parsed.scheme!r} is not allowed (http and https only)")
    if not parsed.host:
        raise UnsafeURLError(f"URL {str(url)[:200]!r} has no host")
    if parsed.userinfo:
        raise UnsafeURLError("URLs with credentials are not fetched")
    literal = ip_literal(parsed.host)
    if literal is not None:
        check_ip(literal, allow_loopback=allow_loopback)
    return parsed


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` with the system resolver (getaddrinfo), all families."""
    import anyio

    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpx.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
    out: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        addr = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if addr not in out:
            out.append(addr)
    return out


async def resolve_checked(
    host: str, port: int, *, allow_loopback: bool, resolver: Resolver = system_resolver
) -> list[IPAddress]:
    """Resolve ``host`` and return its addresses; UnsafeURLError if any is not public.

    Refusing when *any* address is private (not only when all are) stops a
    hostname that mixes public and private records from being used to probe.
    """
    literal = ip_literal(host)
    if literal is not None:
        check_ip(literal, allow_loopback=allow_loopback)
        return [literal]
    addresses = list(await resolver(host, port))
    if not addresses:
        raise UnsafeURLError(f"host {host!r} resolved to no address")
    for addr in addresses:
        reason = _blocked_reason(addr, allow_loopback=allow_loopback)
        if reason is not None:
            raise UnsafeURLError(f"host {host!r} resolves to {addr}, not allowed: {reason}")
    return addresses


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that connects only to checked public addresses.

    ``connect_tcp(host, ...)`` resolves ``host`` through ``resolver``, refuses
    with UnsafeURLError if any address is not public, then opens a TCP
    connection to one of the *checked* addresses. TLS is layered on top by
    httpcore with the original hostname, so SNI and certificate checks are
    unchanged. Unix sockets are refused.
    """

    def __init__(
        self, *, allow_loopback: bool = False, resolver: Resolver = system_resolver
    ) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_loopback = allow_loopback
        self._resolver = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_checked(
            host, port, allow_loopback=self._allow_loopback, resolver=self._resolver
        )
        *first, last = addresses  # resolve_checked never returns an empty list
        for addr in first:
            try:
                return await self._inner.connect_tcp(
                    str(addr), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue  # try the next checked address
        return await self._inner.connect_tcp(
            str(last), port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURLError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose every connection goes through :class:`GuardedNetworkBackend`.

    No proxies and no environment settings are used (a proxy would resolve
    names itself and defeat the guard). Redirects are not followed here.
    """

    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        resolver: Resolver = system_resolver,
        max_connections: int = 100,
    ) -> None:
        super().__init__(trust_env=False)
        # httpx 0.28 has no public hook for the network backend; swap the pool it
        # built for one that uses ours (same settings, no proxy). The SSRF tests
        # fail if this ever stops taking effect.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedNetworkBackend(allow_loopback=allow_loopback, resolver=resolver),
        )


__all__ = [
    "BLOCKED_V4",
    "BLOCKED_V6",
    "GuardedNetworkBackend",
    "GuardedTransport",
    "IPAddress",
    "Resolver",
    "check_ip",
    "check_url",
    "ip_literal",
    "is_public_ip",
    "parse_ipv4_loose",
    "resolve_checked",
    "system_resolver",
]
