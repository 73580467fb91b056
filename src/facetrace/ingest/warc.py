"""Images from web archives (``.warc``, ``.warc.gz``), read with warcio.

Only ``response`` records with a 2xx status and ``resource`` records are
looked at, and of those only images (an ``image/*`` type, or bytes that sniff
as an image when the type is missing or ``application/octet-stream``).
Provenance comes from the archive:

==============  ===========================================================
image_url       the record's ``WARC-Target-URI``
fetched_at      the record's ``WARC-Date`` (the capture date, UTC)
page_url        the ``Referer`` header of the matching ``request`` record
                (matched by ``WARC-Concurrent-To``, else by target URI; the
                request may come just before or just after the response)
==============  ===========================================================

``WARC-Refers-To`` names another *record* (for revisits), not a page, so it is
not used as the page URL.

Hosts on the default deny list (and outside the policy's scope, when a policy is
given) give :class:`Refusal` values, as do records over the byte cap. A corrupt
or truncated archive raises :class:`~facetrace.errors.FetchError` naming the
offset, after every good image before it has been yielded.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from facetrace.errors import FetchError, MissingDependencyError, NotFoundError
from facetrace.ingest.fetch.media import (
    SNIFF_BYTES,
    UNKNOWN_TYPES,
    is_image_type,
    parse_content_type,
    sniff_image,
)
from facetrace.ingest.fetch.policy import SourcePolicy, denied_host
from facetrace.ingest.fetch.types import FetchedImage, Refusal, RefusalKind

#: Default cap on one record's payload, bytes.
DEFAULT_MAX_RECORD_BYTES = 50 * 1024 * 1024
#: Referers remembered from request records, for responses that come later.
_REFERER_MEMORY = 4096


@dataclass
class _Pending:
    image: FetchedImage
    record_id: str | None


def read_warc(
    path: str | Path,
    *,
    policy: SourcePolicy | None = None,
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Iterator[FetchedImage | Refusal]:
    """Yield the images of a WARC file (gzip or not) with their capture provenance.

    Args:
        path: a ``.warc`` or ``.warc.gz`` file.
        policy: when given, records outside its scope or on its ``denied_hosts``
            are refused; the default deny list applies either way.
        max_bytes: largest payload read from one record, bytes; bigger ones give
            a TOO_LARGE refusal.

    Raises:
        NotFoundError: the file does not exist.
        FetchError: the archive is corrupt or truncated (images before the damage
            have already been yielded).
    """
    try:
        from warcio.archiveiterator import ArchiveIterator
        from warcio.exceptions import ArchiveLoadFailed
    except ImportError as exc:  # pragma: no cover - warcio is a core dependency
        raise MissingDependencyError("reading WARC files needs warcio: pip install warcio") from exc
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
    file = Path(path)
    try:
        fh: BinaryIO = file.open("rb")
    except FileNotFoundError as exc:
        raise NotFoundError(f"no such archive: {file}") from exc
    except OSError as exc:
        raise FetchError(f"cannot open archive {file}: {exc}") from exc
    with fh:
        size = file.stat().st_size
        gzipped = fh.read(2) == b"\x1f\x8b"
        fh.seek(0)
        iterator = ArchiveIterator(fh)
        referers_by_id: dict[str, str] = {}
        referers_by_uri: dict[str, str] = {}
        pending: _Pending | None = None
        end = 0  # offset just past the last complete record
        try:
            for record in iterator:
                kind = record.rec_type
                if kind == "request":
                    referer = _request_referer(record)
                    if referer is not None:
                        record_id = record.rec_headers.get_header("WARC-Record-ID")
                        _remember(referers_by_id, record_id, referer)
                        _remember(referers_by_uri, _target(record), referer)
                        if pending is not None and _matches(pending, record):
                            pending.image = _with_page(pending.image, referer)
                if pending is not None:
                    yield pending.image
                    pending = None
                result = None
                if kind in ("response", "resource"):
                    result = _image_of(record, policy, max_bytes)
                    if isinstance(result, FetchedImage):
                        referer = _lookup_referer(record, referers_by_id, referers_by_uri)
                        if referer is not None:
                            result = _with_page(result, referer)
                # Reads the rest of the record, then checks it was all there.
                offset = iterator.get_record_offset()
                length = iterator.get_record_length()
                missing = getattr(record.raw_stream, "limit", None)
                if missing is None or missing > 0:  # no Content-Length, or fewer bytes
                    raise FetchError(
                        f"archive {file} is truncated: record at offset {offset}"
                        f" ({_target(record) or kind}) is incomplete"
                    )
                end = offset + length
                if isinstance(result, FetchedImage):
                    pending = _Pending(result, record.rec_headers.get_header("WARC-Record-ID"))
                elif isinstance(result, Refusal):
                    yield result
        except FetchError:
            if pending is not None:
                yield pending.image
            raise
        except (
            ArchiveLoadFailed,
            zlib.error,
            EOFError,
            ValueError,
            OSError,
            # warcio trips over some malformed headers (a record with no target URI, a
            # length too big for an index) with errors of its own; they mean the same.
            AttributeError,
            TypeError,
            IndexError,
            KeyError,
            OverflowError,
        ) as exc:
            if pending is not None:
                yield pending.image
            raise FetchError(f"archive {file} is corrupt after offset {end}: {exc}") from exc
        if pending is not None:
            yield pending.image
        _check_tail(fh, file, end, size, compressed=gzipped)


def _check_tail(fh: BinaryIO, file: Path, end: int, size: int, *, compressed: bool) -> None:
    """Raise FetchError when bytes after the last complete record are not just padding."""
    if end >= size:
        return
    if compressed:
        raise FetchError(
            f"archive {file} is truncated or corrupt: {size - end} bytes after offset {end}"
            " do not form a complete record"
        )
    fh.seek(end)
    if fh.read(size - end).strip():
        raise FetchError(
            f"archive {file} is truncated or corrupt: data after offset {end}"
            " does not form a complete record"
        )


def _target(record: Any) -> str | None:
    value = record.rec_headers.get_header("WARC-Target-URI")
    return None if value is None else str(value).strip("<>")


def _request_referer(record: Any) -> str | None:
    headers = record.http_headers
    if headers is None:
        return None
    value = headers.get_header("Referer")
    return str(value) if value else None


def _remember(memory: dict[str, str], key: str | None, value: str) -> None:
    if key is None:
        return
    if len(memory) >= _REFERER_MEMORY:
        memory.pop(next(iter(memory)))
    memory[key] = value


def _matches(pending: _Pending, request: Any) -> bool:
    concurrent = request.rec_headers.get_header("WARC-Concurrent-To")
    if pending.record_id is not None and concurrent == pending.record_id:
        return True
    return _target(request) == pending.image.image_url


def _lookup_referer(record: Any, by_id: dict[str, str], by_uri: dict[str, str]) -> str | None:
    for header, value in record.rec_headers.headers:
        if header.lower() == "warc-concurrent-to" and value in by_id:
            return by_id[value]
    target = _target(record)
    return None if target is None else by_uri.get(target)


def _with_page(image: FetchedImage, page_url: str) -> FetchedImage:
    return FetchedImage(
        content=image.content,
        image_url=image.image_url,
        page_url=page_url,
        fetched_at=image.fetched_at,
        content_type=image.content_type,
    )


def _image_of(
    record: Any, policy: SourcePolicy | None, max_bytes: int
) -> FetchedImage | Refusal | None:
    """The record's image, a refusal, or None when it holds no image."""
    uri = _target(record)
    if uri is None or not uri.lower().startswith(("http://", "https://")):
        return None
    if record.rec_type == "response":
        http = record.http_headers
        if http is None:
            return None
        status = http.get_statuscode()
        if not (status and status.isdigit() and 200 <= int(status) < 300):
            return None
        header = http.get_header("Content-Type")
    else:
        header = record.rec_headers.get_header("Content-Type")
    media_type, _charset = parse_content_type(header)
    unknown = media_type in UNKNOWN_TYPES
    if not (is_image_type(media_type) or unknown):
        return None
    try:
        url = httpx.URL(uri)
        host = url.raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError):
        return None
    entry = denied_host(host, policy.denied_hosts if policy else frozenset())
    if entry is not None:
        return Refusal(
            uri,
            f"host {host} is on the deny list ({entry}): its terms forbid facial recognition",
            RefusalKind.DENIED_HOST,
        )
    if policy is not None and not policy.in_scope(url):
        return Refusal(uri, "outside the source's scope", RefusalKind.OUT_OF_SCOPE)
    stream = record.content_stream()
    content = stream.read(max_bytes + 1)
    if len(content) > max_bytes:
        return Refusal(
            uri, f"record payload exceeds the cap of {max_bytes} bytes", RefusalKind.TOO_LARGE
        )
    sniffed = sniff_image(content[:SNIFF_BYTES])
    if unknown:
        if sniffed is None:
            return None
        media_type = sniffed
    return FetchedImage(
        content=content,
        image_url=uri,
        page_url=None,
        fetched_at=_warc_date(record.rec_headers.get_header("WARC-Date")),
        content_type=media_type or None,
    )


def _warc_date(value: str | None) -> datetime:
    """WARC-Date (ISO 8601, UTC) as an aware datetime; FetchError when missing or invalid."""
    if not value:
        raise FetchError("WARC record has no WARC-Date")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise FetchError(f"WARC record has an invalid WARC-Date {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


__all__ = ["DEFAULT_MAX_RECORD_BYTES", "read_warc"]
