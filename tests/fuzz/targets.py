"""Fuzz targets: each feeds arbitrary bytes to one of facetrace's parsers.

A target may raise :class:`facetrace.errors.FaceTraceError` (a clear refusal); any
other exception, a hang or a crash is a finding. ``tests/fuzz/run.py`` drives them with
atheris (coverage-guided); ``tests/fuzz/test_fuzz.py`` replays the seeds and every
regression fixture, and runs each target for a bounded time.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from facetrace.errors import FaceTraceError

Target = Callable[[bytes], None]

_TMP = Path(tempfile.gettempdir()) / f"facetrace-fuzz-{os.getpid()}"


def _file(data: bytes, suffix: str) -> Path:
    _TMP.mkdir(parents=True, exist_ok=True)
    path = _TMP / f"input{suffix}"
    path.write_bytes(data)
    return path


def image(data: bytes) -> None:
    from facetrace.vision.imaging import decode_image

    decoded = decode_image(data, max_bytes=1 << 20, max_pixels=1 << 22)
    if decoded.pixels.ndim != 3 or decoded.pixels.shape[2] != 3:
        raise AssertionError("decode_image returned a non-RGB array")


def warc(data: bytes) -> None:
    from facetrace.ingest.warc import read_warc

    suffix = ".warc.gz" if data[:2] == b"\x1f\x8b" else ".warc"
    for _ in read_warc(_file(data, suffix), max_bytes=1 << 20):
        pass


def url(data: bytes) -> None:
    from facetrace.governance.gate import host_in, url_host
    from facetrace.ingest.fetch.ssrf import check_url, ip_literal, parse_ipv4_loose

    text = data.decode("utf-8", "replace")
    with contextlib.suppress(FaceTraceError):
        check_url(text)
    host = url_host(text)
    if host is not None:
        host_in(host, "example.com")
        ip_literal(host)
        parse_ipv4_loose(host)


def robots(data: bytes) -> None:
    from facetrace.ingest.fetch.robots import RobotsRules

    rules = RobotsRules.parsed(data)
    for path in ("/", "/photos/a.jpg", "/%E2%82%AC?x=1"):
        rules.can_fetch("https://example.com" + path, "facetrace/0.1")
    rules.crawl_delay("facetrace/0.1")


def html(data: bytes) -> None:
    from facetrace.ingest.fetch.html import extract_links

    extract_links(data.decode("utf-8", "replace"), "https://example.com/a/page.html")


def lists(data: bytes) -> None:
    """The text-file readers: pairs (LFW and CSV), URL lists, identification lists and
    demographic labels."""
    from facetrace.evaluation.demographics import read_labels
    from facetrace.evaluation.identify import read_list
    from facetrace.evaluation.pairs import read_pairs
    from facetrace.ingest.urllist import read_url_list

    for suffix, read in (
        (".txt", read_pairs),
        (".csv", read_pairs),
        (".txt", read_url_list),
        (".txt", read_list),
        (".csv", read_labels),
    ):
        with contextlib.suppress(FaceTraceError):
            read(_file(data, suffix))  # type: ignore[operator]


MODULES = (
    "facetrace.vision.imaging",
    "facetrace.ingest.warc",
    "facetrace.ingest.fetch.ssrf",
    "facetrace.ingest.fetch.robots",
    "facetrace.ingest.fetch.html",
    "facetrace.governance.gate",
    "facetrace.evaluation.pairs",
    "facetrace.evaluation.identify",
    "facetrace.evaluation.demographics",
    "facetrace.ingest.urllist",
)
"""The modules the targets exercise (``run.py`` imports them instrumented)."""

TARGETS: dict[str, Target] = {
    "image": image,
    "warc": warc,
    "url": url,
    "robots": robots,
    "html": html,
    "lists": lists,
}


def run_one(name: str, data: bytes) -> None:
    """Run target ``name`` on ``data``; only facetrace's own errors are allowed out."""
    with contextlib.suppress(FaceTraceError):
        TARGETS[name](data)
