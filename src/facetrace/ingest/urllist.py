"""URL lists: a text file of image or page URLs, one a line, fetched under a source policy."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path

from facetrace.config import Settings
from facetrace.errors import NotFoundError, UsageError
from facetrace.ingest.fetch.fetcher import fetch_urls, fetch_urls_async
from facetrace.ingest.fetch.policy import SourcePolicy
from facetrace.ingest.fetch.types import FetchedImage, Refusal

_COMMENT = re.compile(r"(^|\s)#.*$")


def read_url_list(path: str | Path) -> list[str]:
    """The URLs of a URL-list file, in order, duplicates removed.

    One URL a line; blank lines are skipped; ``#`` starts a comment at the start
    of a line or after white space (a ``#`` inside a URL is a fragment). The file
    is UTF-8 (a BOM is allowed). URLs are not validated here: the fetcher refuses
    bad ones and records why.

    Raises:
        NotFoundError: the file does not exist.
        UsageError: a line holds more than one word (``file:line`` is named).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise NotFoundError(f"no such URL list: {file}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read URL list {file}: {exc}") from exc
    urls: dict[str, None] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        if len(line.split()) > 1:
            raise UsageError(f"{file}:{number}: expected one URL a line, got {line[:120]!r}")
        urls.setdefault(line, None)
    return list(urls)


async def fetch_url_list(
    path: str | Path, policy: SourcePolicy, settings: Settings
) -> AsyncGenerator[FetchedImage | Refusal, None]:
    """Fetch every URL of a URL-list file: images directly, HTML pages for their images.

    Results come as they are ready (not in file order); see
    :meth:`facetrace.ingest.fetch.Fetcher.fetch` for what a page gives.
    """
    async for item in fetch_urls_async(read_url_list(path), policy, settings):
        yield item


def iter_url_list(
    path: str | Path, policy: SourcePolicy, settings: Settings
) -> Iterator[FetchedImage | Refusal]:
    """Blocking form of :func:`fetch_url_list` (runs its own event loop)."""
    return fetch_urls(read_url_list(path), policy, settings)


__all__ = ["fetch_url_list", "iter_url_list", "read_url_list"]
