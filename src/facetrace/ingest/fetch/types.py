"""Value objects the collection layer hands to the ingest pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class RefusalKind(StrEnum):
    """Why a URL or archive record was not collected."""

    DENIED_HOST = "denied_host"  # default deny list or the source's denied_hosts
    OUT_OF_SCOPE = "out_of_scope"  # host or URL prefix outside the source's scope
    ROBOTS = "robots"  # robots.txt disallows it, or could not be fetched (5xx, error)
    UNSAFE_URL = "unsafe_url"  # SSRF guard: scheme, credentials or address not allowed
    INVALID_URL = "invalid_url"  # the URL cannot be parsed
    TOO_LARGE = "too_large"  # body over the byte cap
    HTTP_ERROR = "http_error"  # status 4xx/5xx (or an unexpected 1xx/3xx)
    TIMEOUT = "timeout"  # the request did not finish within the policy's timeout
    NETWORK_ERROR = "network_error"  # connection refused, reset, DNS failure...
    NOT_IMAGE = "not_image"  # content is neither an image nor (where allowed) HTML
    TOO_MANY_REDIRECTS = "too_many_redirects"  # more than 5 redirect hops
    REDIRECT_LOOP = "redirect_loop"  # a redirect chain came back to a URL it visited
    CRAWL_BUDGET = "crawl_budget"  # the source's max_pages was reached


@dataclass(frozen=True)
class FetchedImage:
    """Image bytes with their provenance.

    Attributes:
        content: the raw bytes as served (not yet decoded or validated).
        image_url: the URL the image was requested at (before redirects), or the
            archive record's WARC-Target-URI.
        page_url: the HTML page the image was found on (or the Referer of the
            archived request); None when the image URL was given directly.
        fetched_at: when the bytes were received (UTC, timezone-aware); for an
            archive, the capture date (WARC-Date).
        content_type: the served media type without parameters (``image/jpeg``),
            or the sniffed type when the server sent none; None if unknown.
    """

    content: bytes
    image_url: str
    page_url: str | None
    fetched_at: datetime
    content_type: str | None

    def __repr__(self) -> str:
        return (
            f"FetchedImage(image_url={self.image_url!r}, page_url={self.page_url!r}, "
            f"fetched_at={self.fetched_at.isoformat()}, content_type={self.content_type!r}, "
            f"bytes={len(self.content)})"
        )


@dataclass(frozen=True)
class Refusal:
    """A URL that was deliberately not collected, to be recorded.

    Attributes:
        url: the URL refused (for a redirect hop, the hop's URL; ``reason`` names
            the URL originally asked for when they differ).
        reason: one line, fit to show to a user.
        kind: the category, for counting and filtering.
        page_url: the page the URL was found on, if any.
    """

    url: str
    reason: str
    kind: RefusalKind
    page_url: str | None = None


__all__ = ["FetchedImage", "Refusal", "RefusalKind"]
