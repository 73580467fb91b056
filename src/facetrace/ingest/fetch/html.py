"""Find image URLs and links in an HTML page (standard library parser, no network)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin

#: ``<meta>`` property / name values whose content is an image of the page.
IMAGE_META = frozenset(
    {"og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"}
)

_SRCSET_DESCRIPTOR = re.compile(r"^(\d+(?:\.\d+)?)([wx])$", re.IGNORECASE)


@dataclass(frozen=True)
class PageLinks:
    """What a page points to, as absolute http(s) URLs without fragments, in page order.

    Attributes:
        images: one URL per ``<img>`` (the largest ``srcset`` candidate, else
            ``src``) and per image ``<meta>`` (``og:image``, ``twitter:image``).
        links: ``<a href>`` targets, for crawling deeper.
    """

    images: tuple[str, ...]
    links: tuple[str, ...]


def largest_srcset_candidate(srcset: str) -> str | None:
    """The URL of the widest (``w``) or densest (``x``) candidate of a ``srcset``.

    A candidate without a descriptor counts as ``1x``. Returns None for an empty set.
    """
    best: tuple[int, float, str] | None = None
    for raw in _split_srcset(srcset):
        parts = raw.split()
        if not parts:
            continue
        url, descriptors = parts[0], parts[1:]
        rank, value = 0, 1.0  # "x" ranks below "w": widths are more informative
        for desc in descriptors:
            m = _SRCSET_DESCRIPTOR.match(desc)
            if m:
                rank, value = (1 if m.group(2).lower() == "w" else 0), float(m.group(1))
        if best is None or (rank, value) > (best[0], best[1]):
            best = (rank, value, url)
    return None if best is None else best[2]


def _split_srcset(srcset: str) -> list[str]:
    """Split a srcset on the commas between candidates (not those inside URLs)."""
    out: list[str] = []
    for chunk in re.split(r",\s+|,(?=\S+\s+\d)", srcset.strip()):
        chunk = chunk.strip().rstrip(",")
        if chunk:
            out.append(chunk)
    return out


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "").strip() for k, v in attrs}
        if tag == "base" and a.get("href") and self.base is None:
            self.base = a["href"]
        elif tag == "img":
            url = largest_srcset_candidate(a.get("srcset", "")) or a.get("src") or ""
            if url:
                self.images.append(url)
        elif tag == "meta":
            key = (a.get("property") or a.get("name") or "").lower()
            if key in IMAGE_META and a.get("content"):
                self.images.append(a["content"])
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])

    handle_startendtag = handle_starttag


def extract_links(html: str, page_url: str) -> PageLinks:
    """Image URLs and links of a page, resolved against ``page_url`` (or its ``<base>``).

    Only http and https URLs are kept (``data:``, ``javascript:``, ``mailto:``
    are dropped); fragments are removed and duplicates dropped, first one wins.
    """
    collector = _Collector()
    collector.feed(html)
    collector.close()
    base = urljoin(page_url, collector.base) if collector.base else page_url
    return PageLinks(
        images=_absolute(collector.images, base),
        links=_absolute(collector.links, base),
    )


def _absolute(urls: list[str], base: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for raw in urls:
        try:
            url = urldefrag(urljoin(base, raw)).url
        except ValueError:
            continue
        if url.lower().startswith(("http://", "https://")):
            seen.setdefault(url, None)
    return tuple(seen)


__all__ = ["IMAGE_META", "PageLinks", "extract_links", "largest_srcset_candidate"]
