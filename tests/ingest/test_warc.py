"""Reading images from web archives built here with warcio's WARCWriter."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from facetrace.errors import FetchError, NotFoundError
from facetrace.ingest.fetch import FetchedImage, Refusal, RefusalKind, SourcePolicy
from facetrace.ingest.warc import read_warc

PAGE = "https://news.example/story.html"
IMG_A = "https://news.example/img/a.jpg"
IMG_B = "https://cdn.example/b.jpg"


def _response(
    writer: WARCWriter,
    uri: str,
    body: bytes,
    content_type: str,
    date: str,
    status: str = "200 OK",
) -> object:
    http = StatusAndHeaders(
        status,
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
        protocol="HTTP/1.1",
    )
    return writer.create_warc_record(
        uri,
        "response",
        payload=io.BytesIO(body),
        http_headers=http,
        warc_headers_dict={"WARC-Date": date},
    )


def _request(writer: WARCWriter, uri: str, referer: str, concurrent_to: str) -> object:
    http = StatusAndHeaders(
        f"GET {uri.split('/', 3)[3]} HTTP/1.1",
        [("Host", uri.split("/")[2]), ("Referer", referer)],
        protocol="HTTP/1.1",
        is_http_request=True,
    )
    return writer.create_warc_record(
        uri,
        "request",
        http_headers=http,
        warc_headers_dict={"WARC-Concurrent-To": concurrent_to},
    )


def _build(path: Path, jpeg: bytes, *, gzip: bool, extra: list[tuple[str, bytes]] = ()) -> None:  # type: ignore[assignment]
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=gzip)
        page = _response(
            writer, PAGE, b"<html><img src='img/a.jpg'></html>", "text/html", "2019-05-01T10:00:00Z"
        )
        writer.write_record(page)
        a = _response(writer, IMG_A, jpeg, "image/jpeg", "2019-05-01T10:00:01Z")
        writer.write_record(a)
        # the request for A comes after its response, as Heritrix writes them
        writer.write_record(
            _request(writer, IMG_A, PAGE, a.rec_headers.get_header("WARC-Record-ID"))  # type: ignore[attr-defined]
        )
        b = _response(writer, IMG_B, jpeg, "application/octet-stream", "2020-02-29T23:59:59.5Z")
        writer.write_record(b)
        for uri, body in extra:
            writer.write_record(_response(writer, uri, body, "image/jpeg", "2021-01-01T00:00:00Z"))


@pytest.mark.parametrize("gzip", [True, False], ids=["warc.gz", "warc"])
def test_images_come_with_capture_provenance(tmp_path: Path, jpeg: bytes, gzip: bool) -> None:
    path = tmp_path / ("crawl.warc.gz" if gzip else "crawl.warc")
    _build(path, jpeg, gzip=gzip)
    items = list(read_warc(path))
    assert all(isinstance(i, FetchedImage) for i in items)
    a, b = items
    assert isinstance(a, FetchedImage) and isinstance(b, FetchedImage)
    assert (a.image_url, a.page_url, a.content_type) == (IMG_A, PAGE, "image/jpeg")
    assert a.fetched_at == datetime(2019, 5, 1, 10, 0, 1, tzinfo=UTC)
    assert a.content == jpeg
    # B had no request record (no Referer) and was labelled octet-stream: sniffed
    assert (b.image_url, b.page_url, b.content_type) == (IMG_B, None, "image/jpeg")
    assert b.fetched_at == datetime(2020, 2, 29, 23, 59, 59, 500000, tzinfo=UTC)
    assert b.content == jpeg


def test_denied_out_of_scope_and_oversized_records_are_refused(tmp_path: Path, jpeg: bytes) -> None:
    path = tmp_path / "crawl.warc.gz"
    extra = [("https://pbs.twimg.com/media/x.jpg", jpeg), ("https://other.example/y.jpg", jpeg)]
    _build(path, jpeg, gzip=True, extra=extra)
    policy = SourcePolicy(allowed_hosts=frozenset({"news.example", "cdn.example", "twimg.com"}))
    items = list(read_warc(path, policy=policy))
    kinds = {i.url: i.kind for i in items if isinstance(i, Refusal)}
    assert kinds == {
        "https://pbs.twimg.com/media/x.jpg": RefusalKind.DENIED_HOST,
        "https://other.example/y.jpg": RefusalKind.OUT_OF_SCOPE,
    }
    small = list(read_warc(path, max_bytes=len(jpeg) - 1))
    assert {i.kind for i in small if isinstance(i, Refusal)} >= {RefusalKind.TOO_LARGE}
    assert not any(isinstance(i, FetchedImage) for i in small)


@pytest.mark.parametrize("gzip", [True, False], ids=["warc.gz", "warc"])
@pytest.mark.parametrize("damage", ["truncated", "cut-in-header", "garbage"])
def test_corrupt_archive_raises_after_the_good_images(
    tmp_path: Path, jpeg: bytes, gzip: bool, damage: str
) -> None:
    path = tmp_path / "crawl.warc"
    _build(path, jpeg, gzip=gzip)
    last_record_at = path.stat().st_size
    _build(path, jpeg, gzip=gzip, extra=[("https://news.example/img/c.jpg", jpeg)])
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) - len(jpeg) // 2])  # cut inside the last image
    elif damage == "cut-in-header":
        path.write_bytes(data[: last_record_at + 40])  # warcio alone would stop silently
    else:
        path.write_bytes(data + b"this is not a WARC record\r\n\r\n" * 3)
    seen: list[FetchedImage | Refusal] = []
    with pytest.raises(FetchError, match=r"crawl\.warc"):
        for item in read_warc(path):
            seen.append(item)
    urls = [i.image_url for i in seen if isinstance(i, FetchedImage)]
    expected = [IMG_A, IMG_B] + (["https://news.example/img/c.jpg"] if damage == "garbage" else [])
    assert urls == expected


def test_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        list(read_warc(tmp_path / "nope.warc.gz"))
