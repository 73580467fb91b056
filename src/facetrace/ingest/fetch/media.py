"""Media types: parse Content-Type headers and sniff image bytes."""

from __future__ import annotations

from facetrace.vision.imaging import sniff_format

#: Media type of each format the safe decoder accepts (checked by the same magic bytes).
_MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "WEBP": "image/webp",
}

#: Bytes needed by :func:`sniff_image`.
SNIFF_BYTES = 32

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: Types servers send when they do not know; the bytes are sniffed instead.
UNKNOWN_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def sniff_image(head: bytes) -> str | None:
    """The image type the first bytes announce, or None.

    Knows JPEG, PNG, GIF, WebP, BMP, TIFF and AVIF/HEIC; needs :data:`SNIFF_BYTES` bytes.
    """
    fmt = sniff_format(head)
    if fmt is not None:
        return _MEDIA_TYPES[fmt]
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heic"
    return None


def parse_content_type(header: str | None) -> tuple[str, str | None]:
    """Split a Content-Type header into (lower-case media type, charset or None)."""
    if not header:
        return "", None
    media_type, *params = header.split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media_type.strip().lower(), charset


def is_image_type(media_type: str) -> bool:
    """True for ``image/*`` other than SVG (vector images hold no photo to search)."""
    return media_type.startswith("image/") and media_type != "image/svg+xml"


def is_html_type(media_type: str) -> bool:
    """True for HTML and XHTML."""
    return media_type in HTML_TYPES


__all__ = [
    "HTML_TYPES",
    "SNIFF_BYTES",
    "UNKNOWN_TYPES",
    "is_html_type",
    "is_image_type",
    "parse_content_type",
    "sniff_image",
]
