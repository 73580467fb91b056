"""Safe image decoding: the only place photos are turned from bytes into pixels.

Checks, in order, before any pixel is decoded:

1. byte cap (``max_bytes``);
2. format by content (magic bytes, or the ``ftyp`` brands of an ISO-BMFF file),
   against an allowlist (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF, AVIF) - the
   file name's extension is ignored;
3. pixel cap (``max_pixels``) on the header's declared size, so a 30000x30000
   "bomb" is refused before its pixels are allocated.

Then it decodes fully (a truncated file is an error, never a grey half-image),
applies EXIF orientation and converts to RGB. Returns ``(h, w, 3)`` uint8.

HEIC/HEIF is decoded by ``pillow-heif`` (registered with Pillow on first use),
AVIF by Pillow itself. libheif applies the container's rotation while decoding
and resets the EXIF orientation to 1, Pillow's AVIF reader leaves the pixels as
stored and reports the rotation as EXIF orientation: either way the one
``exif_transpose`` below turns the photo upright exactly once.
"""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from facetrace.errors import (
    CorruptImageError,
    ImageTooLargeError,
    UnsupportedFormatError,
)

RGBImage = npt.NDArray[np.uint8]

# Pillow format names we accept, keyed by the magic bytes that identify them.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"WEBP", 8, "WEBP"),
)

# ISO-BMFF ``ftyp`` brands (major or compatible) of the HEIF family, by Pillow format name.
# AVIF is checked first: an AVIF file may also list the generic ``mif1``/``msf1``.
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)
ALLOWED_FORMATS = frozenset({fmt for _, _, fmt in _MAGIC} | {"HEIF", "AVIF"})

_heif_lock = threading.Lock()
_heif_registered = False


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """A decoded photo: ``pixels`` is ``(h, w, 3)`` uint8 RGB, upright."""

    pixels: RGBImage
    format: str
    sha256: str
    byte_size: int

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def sniff_format(data: bytes) -> str | None:
    """Return the allowed format the bytes start with, or None.

    Only formats with a fixed signature; see :func:`sniff_isobmff` for HEIF/AVIF.
    """
    for magic, offset, fmt in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if fmt == "WEBP" and data[:4] != b"RIFF":
                continue
            return fmt
    return None


def sniff_isobmff(data: bytes) -> str | None:
    """Return ``"AVIF"`` or ``"HEIF"`` from the brands of a leading ``ftyp`` box, or None.

    The box is ``size(4) "ftyp" major_brand(4) minor_version(4) compatible_brands(4 each)``.
    """
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    end = min(int.from_bytes(data[:4], "big"), len(data))
    brands = {data[8:12]} | {data[i : i + 4] for i in range(16, end - 3, 4)}
    if brands & _AVIF_BRANDS:
        return "AVIF"
    if brands & _HEIF_BRANDS:
        return "HEIF"
    return None


def _register_heif() -> None:
    """Register pillow-heif's HEIF opener with Pillow, once (AVIF is Pillow's own)."""
    global _heif_registered
    with _heif_lock:
        if _heif_registered:
            return
        from pillow_heif import register_heif_opener

        # Only the primary image: thumbnails, depth maps and auxiliary images are not read.
        register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
        _heif_registered = True


def read_image_bytes(path: Path, max_bytes: int) -> bytes:
    """Read a file, refusing it before reading if it is larger than ``max_bytes``."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CorruptImageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if size > max_bytes:
        raise ImageTooLargeError(f"file is {size} bytes, over the {max_bytes}-byte limit")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CorruptImageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> DecodedImage:
    """Decode image bytes safely; see the module docstring for the checks.

    Raises ImageTooLargeError, UnsupportedFormatError or CorruptImageError.
    """
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"file is {len(data)} bytes, over the {max_bytes}-byte limit")
    if not data:
        raise CorruptImageError("file is empty")
    fmt = sniff_format(data) or sniff_isobmff(data)
    if fmt is None:
        raise UnsupportedFormatError(
            "not a supported image (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC or AVIF, "
            "checked by content)"
        )
    if fmt == "HEIF":
        _register_heif()
    sha = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check only warns below 2x its limit; we enforce ours.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = img.size
            if width <= 0 or height <= 0:
                raise CorruptImageError("image has no pixels")
            if width * height > max_pixels:
                raise ImageTooLargeError(
                    f"image is {width}x{height} pixels, over the {max_pixels}-pixel limit"
                )
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode != "RGB":
                img = _to_rgb(img)
            pixels = np.asarray(img, dtype=np.uint8)
    except (ImageTooLargeError, CorruptImageError):
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"image is over the {max_pixels}-pixel limit (decompression bomb guard: {exc})"
        ) from exc
    except UnidentifiedImageError as exc:
        raise CorruptImageError(f"{fmt} data could not be decoded") from exc
    except (OSError, ValueError, SyntaxError, EOFError, RuntimeError) as exc:
        # RuntimeError: libheif's errors that are not "invalid input" (e.g. its own limits).
        raise CorruptImageError(f"{fmt} data is truncated or corrupt: {exc}") from exc
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise CorruptImageError(f"unexpected pixel layout {pixels.shape}")
    return DecodedImage(
        pixels=np.ascontiguousarray(pixels), format=fmt, sha256=sha, byte_size=len(data)
    )


def load_image(path: Path, *, max_bytes: int, max_pixels: int) -> DecodedImage:
    """Read and decode a file with :func:`decode_image`'s checks."""
    return decode_image(
        read_image_bytes(path, max_bytes), max_bytes=max_bytes, max_pixels=max_pixels
    )


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode to RGB, compositing transparency onto white."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() or 1.0
        return Image.fromarray((arr * (255.0 / top)).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def encode_jpeg(pixels: RGBImage, quality: int = 85) -> bytes:
    """Encode ``(h, w, 3)`` uint8 RGB as JPEG bytes."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
