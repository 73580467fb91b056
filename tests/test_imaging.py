"""Safe decoding: hostile and broken files are refused with clear errors."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facetrace import CorruptImageError, ImageTooLargeError, UnsupportedFormatError
from facetrace.vision.imaging import decode_image, load_image
from tests.conftest import FR

LIMITS = {"max_bytes": 50 * 1024 * 1024, "max_pixels": 80_000_000}


def png_bomb(side: int = 30000) -> bytes:
    """A real PNG of side x side black pixels: about 1 MB on disk, 2.7 GB decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB
    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * side)
    parts = [comp.compress(row) for _ in range(side)]
    parts.append(comp.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )


def test_decodes_a_real_photo_to_rgb() -> None:
    img = load_image(FR / "obama.jpg", **LIMITS)
    assert img.pixels.dtype == np.uint8
    assert img.pixels.shape == (1137, 910, 3)
    assert img.format == "JPEG"
    assert len(img.sha256) == 64


def test_32bit_png_with_alpha_becomes_rgb() -> None:
    img = load_image(FR / "32bit.png", **LIMITS)
    assert img.pixels.shape[2] == 3


def test_png_bomb_is_refused_before_decoding() -> None:
    data = png_bomb()
    assert len(data) < 5 * 1024 * 1024
    with pytest.raises(ImageTooLargeError, match="-pixel limit"):
        decode_image(data, **LIMITS)


def test_byte_cap_is_enforced() -> None:
    data = (FR / "obama.jpg").read_bytes()
    with pytest.raises(ImageTooLargeError, match="byte"):
        decode_image(data, max_bytes=1024 * 10, max_pixels=LIMITS["max_pixels"])


def test_truncated_jpeg_is_an_error_not_a_grey_image() -> None:
    data = (FR / "obama.jpg").read_bytes()
    with pytest.raises(CorruptImageError, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2], **LIMITS)


def test_text_renamed_to_jpg_is_refused_by_content(tmp_path: Path) -> None:
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is not a photo\n" * 10)
    with pytest.raises(UnsupportedFormatError, match="checked by content"):
        load_image(fake, **LIMITS)


def test_corrupt_bytes_with_a_jpeg_header_are_refused() -> None:
    data = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 20
    with pytest.raises(CorruptImageError):
        decode_image(data, **LIMITS)


def test_empty_file_is_refused() -> None:
    with pytest.raises(CorruptImageError, match="empty"):
        decode_image(b"", **LIMITS)


def test_exif_orientation_is_applied() -> None:
    base = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buf = io.BytesIO()
    base.save(buf, format="JPEG", exif=exif.tobytes())
    img = decode_image(buf.getvalue(), **LIMITS)
    assert img.pixels.shape[:2] == (40, 20)
