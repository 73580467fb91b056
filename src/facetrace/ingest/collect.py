"""Turn what the user named (folders, URL lists, WARC archives) into photo tasks.

Each input kind yields :class:`PhotoTask` for every photo to analyse and
:class:`Refused` for every item refused before analysis (robots.txt, the deny
list, the source's scope, an unsafe address, a fetch error); both keep the
item's key so that a resumed job can skip what was done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from facetrace.config import Settings
from facetrace.errors import UsageError
from facetrace.ingest.fetch import FetchedImage, Refusal, SourcePolicy, fetch_urls
from facetrace.ingest.folder import folder_tasks
from facetrace.ingest.tasks import PhotoTask, Refused
from facetrace.ingest.urllist import read_url_list
from facetrace.ingest.warc import read_warc

WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")
URL_LIST_SUFFIXES = (".txt", ".urls", ".lst")


class InputKind(StrEnum):
    """What a list of ingest paths holds."""

    FOLDER = "folder"
    URL_LIST = "url-list"
    WARC = "warc"


def input_kind(paths: Sequence[Path]) -> InputKind:
    """Classify ``paths`` by name: all WARC archives, all URL lists, or files/folders."""
    if not paths:
        raise UsageError("name at least one file, folder, URL list or WARC archive")
    names = [p.name.lower() for p in paths]
    warcs = [n.endswith(WARC_SUFFIXES) for n in names]
    lists = [
        n.endswith(URL_LIST_SUFFIXES) and Path(p).is_file()
        for n, p in zip(names, paths, strict=True)
    ]
    if all(warcs):
        return InputKind.WARC
    if all(lists):
        return InputKind.URL_LIST
    if any(warcs) or any(lists):
        raise UsageError("ingest one kind of input at a time: photos, URL lists or WARC files")
    return InputKind.FOLDER


def _from_fetch(item: FetchedImage | Refusal) -> PhotoTask | Refused:
    if isinstance(item, Refusal):
        return Refused(key=item.url, error=f"refused ({item.kind.value}): {item.reason}")
    return PhotoTask(
        key=item.image_url,
        origin=item.image_url,
        page_url=item.page_url,
        collected_at=item.fetched_at,
        data=item.content,
    )


def collect(
    kind: InputKind,
    paths: Sequence[Path],
    *,
    policy: SourcePolicy,
    settings: Settings,
    clock: Callable[[], datetime],
    skip: frozenset[str] = frozenset(),
) -> Iterator[PhotoTask | Refused]:
    """Tasks for ``paths``; ``skip`` holds keys a resumed job already finished
    (URLs in it are not fetched again)."""
    if kind is InputKind.FOLDER:
        yield from folder_tasks(paths, clock)
    elif kind is InputKind.URL_LIST:
        urls = [u for path in paths for u in read_url_list(path) if u not in skip]
        for item in fetch_urls(urls, policy, settings):
            yield _from_fetch(item)
    else:
        for path in paths:
            for item in read_warc(path, policy=policy, max_bytes=settings.max_image_bytes):
                yield _from_fetch(item)
