"""Perceptual hash of a photo: the 64-bit DCT hash ("pHash").

Grey 32x32 thumbnail -> 2-D DCT-II -> the 8x8 lowest frequencies (DC included)
-> one bit per coefficient: above the median of the 64. Re-encoded, resized or
lightly recompressed copies of a photo differ by a few bits; different photos by
about 32.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from facetrace.vision.base import RGBImage

HASH_BITS = 64
BANDS = 4
BAND_BITS = HASH_BITS // BANDS


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    m[0] /= np.sqrt(2.0)
    return np.asarray(m * np.sqrt(2.0 / n), dtype=np.float64)


_DCT32 = _dct_matrix(32)


def phash(image: RGBImage) -> int:
    """The photo's 64-bit perceptual hash as an unsigned int."""
    grey = Image.fromarray(image).convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    coeffs = (_DCT32 @ pixels @ _DCT32.T)[:8, :8].ravel()
    bits = coeffs > np.median(coeffs)
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def to_hex(value: int) -> str:
    return f"{value:016x}"


def bands(value: int) -> tuple[int, ...]:
    """The hash's four 16-bit bands, most significant first."""
    mask = (1 << BAND_BITS) - 1
    return tuple((value >> (BAND_BITS * (BANDS - 1 - b))) & mask for b in range(BANDS))


def distance(a: int, b: int) -> int:
    """Hamming distance between two hashes, in bits."""
    return (a ^ b).bit_count()
