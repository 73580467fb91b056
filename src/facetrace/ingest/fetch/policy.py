"""Source policy: which URLs a source may collect, and how gently.

A :class:`SourcePolicy` is stored per source by the metadata store and handed to
the fetcher. Its checks run before any network access. The default deny list
(:data:`DEFAULT_DENY_HOSTS`) is applied on top of every policy and no policy
field can lift it: these sites' terms forbid facial recognition or scraping for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import httpx

from facetrace.errors import ConfigError, UsageError

#: Hosts (and all their subdomains) never fetched, whatever a source's scope says.
DEFAULT_DENY_HOSTS: frozenset[str] = frozenset(
    {
        "x.com",
        "twitter.com",
        "twimg.com",
        "t.co",
        "facebook.com",
        "fb.com",
        "fbcdn.net",
        "instagram.com",
        "cdninstagram.com",
        "youtube.com",
        "youtu.be",
        "ytimg.com",
        "linkedin.com",
        "licdn.com",
        "venmo.com",
    }
)


def normalize_host(host: str) -> str:
    """Lower-case ASCII (IDNA) form of a host, without a trailing dot or IPv6 brackets."""
    text = host.strip().strip("[]").rstrip(".").lower()
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            return text
    return text


def host_matches(host: str, pattern: str) -> bool:
    """True when ``host`` is ``pattern`` or one of its subdomains (case-insensitive).

    ``pattern`` may be written ``example.com``, ``.example.com`` or ``*.example.com``;
    all three match ``example.com`` and ``a.b.example.com`` but not ``badexample.com``.
    """
    h = normalize_host(host)
    p = normalize_host(pattern.removeprefix("*").lstrip("."))
    return bool(p) and (h == p or h.endswith("." + p))


def denied_host(host: str, extra: frozenset[str] = frozenset()) -> str | None:
    """The deny-list entry ``host`` falls under, or None when it is not denied."""
    for pattern in sorted(DEFAULT_DENY_HOSTS | extra):
        if host_matches(host, pattern):
            return pattern
    return None


@dataclass(frozen=True)
class SourcePolicy:
    """What a source may collect and at what pace.

    Attributes:
        allowed_hosts: host patterns (see :func:`host_matches`); a URL's host must
            match one. Empty = any host (deny list and SSRF guard still apply).
        url_prefixes: URL prefixes (``https://example.org/people/``); a URL must
            start with one. Empty = no prefix restriction.
        denied_hosts: extra host patterns to refuse, on top of the default deny list.
        max_depth: link hops followed from a listed page: 0 = only the listed
            URLs (and the images on listed pages), 1 = also pages they link to, ...
        max_pages: most HTML pages fetched for one listed URL (a crawl budget).
        rate_limit: requests per second per host (robots.txt included), > 0.
        max_concurrency_per_host: requests in flight at once to one host.
        max_bytes: largest response body read, bytes; a larger one is refused.
        timeout: seconds for one whole request, connect to last byte.
    """

    allowed_hosts: frozenset[str] = frozenset()
    url_prefixes: tuple[str, ...] = ()
    denied_hosts: frozenset[str] = frozenset()
    max_depth: int = 0
    max_pages: int = 100
    rate_limit: float = 1.0
    max_concurrency_per_host: int = 2
    max_bytes: int = 20 * 1024 * 1024
    timeout: float = 30.0
    _normalized_hosts: frozenset[str] = field(init=False, repr=False, compare=False)
    _normalized_prefixes: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.allowed_hosts, str) or isinstance(self.denied_hosts, str):
            raise ConfigError("allowed_hosts and denied_hosts are sets of host names, not a string")
        if isinstance(self.url_prefixes, str):
            raise ConfigError("url_prefixes is a tuple of prefixes, not a string")
        for name in ("allowed_hosts", "denied_hosts", "url_prefixes"):
            value = getattr(self, name)
            if not isinstance(value, list | tuple | set | frozenset) or not all(
                isinstance(v, str) and v.strip() for v in value
            ):
                raise ConfigError(f"{name} must be a list of non-empty strings, got {value!r}")
        for name in ("max_depth", "max_pages", "max_concurrency_per_host", "max_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be a whole number, got {value!r}")
        for name in ("rate_limit", "timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ConfigError(f"{name} must be finite, got {value!r}")
        object.__setattr__(self, "allowed_hosts", frozenset(self.allowed_hosts))
        object.__setattr__(self, "denied_hosts", frozenset(self.denied_hosts))
        object.__setattr__(self, "url_prefixes", tuple(self.url_prefixes))
        if self.max_depth < 0:
            raise ConfigError(f"max_depth must be >= 0, got {self.max_depth}")
        if self.max_pages < 1:
            raise ConfigError(f"max_pages must be >= 1, got {self.max_pages}")
        if not self.rate_limit > 0:
            raise ConfigError(f"rate_limit must be > 0 requests/s, got {self.rate_limit}")
        if self.max_concurrency_per_host < 1:
            raise ConfigError(
                f"max_concurrency_per_host must be >= 1, got {self.max_concurrency_per_host}"
            )
        if self.max_bytes < 1:
            raise ConfigError(f"max_bytes must be >= 1, got {self.max_bytes}")
        if not self.timeout > 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {self.timeout}")
        for prefix in self.url_prefixes:
            if not prefix.startswith(("http://", "https://")):
                raise ConfigError(f"url prefix {prefix!r} must start with http:// or https://")
        object.__setattr__(
            self, "_normalized_hosts", frozenset(normalize_host(h) for h in self.allowed_hosts)
        )
        object.__setattr__(
            self, "_normalized_prefixes", tuple(_normalize_prefix(p) for p in self.url_prefixes)
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (sets and tuples as sorted / ordered lists), for the store."""
        return {
            "allowed_hosts": sorted(self.allowed_hosts),
            "url_prefixes": list(self.url_prefixes),
            "denied_hosts": sorted(self.denied_hosts),
            "max_depth": self.max_depth,
            "max_pages": self.max_pages,
            "rate_limit": self.rate_limit,
            "max_concurrency_per_host": self.max_concurrency_per_host,
            "max_bytes": self.max_bytes,
            "timeout": self.timeout,
        }

    @classmethod
    def field_names(cls) -> frozenset[str]:
        """The policy's settable fields, as stored."""
        return frozenset(f.name for f in fields(cls) if f.init)

    @classmethod
    def from_source(cls, stored: Mapping[str, Any]) -> SourcePolicy:
        """The collection policy within a source's stored policy, which also holds
        settings of other parts (such as ``retention_days``)."""
        names = cls.field_names()
        return cls.from_dict({k: v for k, v in stored.items() if k in names})

    @classmethod
    def validate(cls, stored: Mapping[str, Any]) -> dict[str, Any]:
        """Check a source's stored policy before it is written, for any front end.

        Returns a copy of ``stored`` whose collection fields are in stored form (as
        :meth:`as_dict` writes them: hosts sorted, duplicates dropped); keys of other
        parts (such as ``retention_days``) pass through unchanged. Raises
        :class:`~facetrace.errors.UsageError` naming the field for a bad value.
        """
        try:
            canonical = cls.from_source(stored).as_dict()
        except ConfigError as exc:
            raise UsageError(f"invalid source policy: {exc}") from exc
        names = cls.field_names()
        return {k: canonical[k] if k in names else v for k, v in stored.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourcePolicy:
        """Inverse of :meth:`as_dict`; missing keys take defaults, unknown ones are an error."""
        unknown = set(data) - cls.field_names()
        if unknown:
            raise ConfigError(f"unknown source policy fields: {', '.join(sorted(unknown))}")
        values = dict(data)
        for key, kind in (
            ("allowed_hosts", frozenset),
            ("denied_hosts", frozenset),
            ("url_prefixes", tuple),
        ):
            if isinstance(values.get(key), list | tuple | set | frozenset):
                values[key] = kind(values[key])  # anything else is refused by __post_init__
        return cls(**values)

    def denied(self, url: httpx.URL) -> str | None:
        """The deny-list entry the URL's host falls under, or None."""
        return denied_host(url.raw_host.decode("ascii"), self.denied_hosts)

    def in_scope(self, url: httpx.URL) -> bool:
        """True when the URL's host is allowed and it starts with an allowed prefix."""
        host = url.raw_host.decode("ascii")
        if self._normalized_hosts and not any(
            host_matches(host, p) for p in self._normalized_hosts
        ):
            return False
        if self._normalized_prefixes:
            text = str(url)
            return any(text.startswith(p) for p in self._normalized_prefixes)
        return True


def _normalize_prefix(prefix: str) -> str:
    """A prefix as httpx prints URLs (lower-case scheme and host, IDNA, no default port).

    A bare origin gets its "/" so that ``https://a.org`` does not match ``https://a.org.evil/``.
    """
    try:
        parsed = httpx.URL(prefix)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ConfigError(f"url prefix {prefix!r} is not a valid URL: {exc}") from exc
    text = str(parsed)
    if parsed.raw_path == b"/" and not text.endswith("/"):
        text += "/"
    return text


__all__ = [
    "DEFAULT_DENY_HOSTS",
    "SourcePolicy",
    "denied_host",
    "host_matches",
    "normalize_host",
]
