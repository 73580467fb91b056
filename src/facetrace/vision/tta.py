"""Test-time augmentation of face descriptors: average over a flipped or jittered chip.

:class:`AugmentedEmbedder` wraps any :class:`~facetrace.vision.base.Embedder`.
It cuts the same chips as the model it wraps and returns, per chip, the mean
descriptor of the chip and its augmented copies:

- ``flip``: the chip and its mirror image (2 descriptors per face);
- ``jitter``: ``n`` extra copies with small rotations, scalings, shifts and
  mirroring, after dlib's ``jitter_image`` (its ``num_jitters`` recipe) but with a
  fixed transform per copy (:func:`jittered`), so a photo always gets the same
  descriptor (dlib's own jitter is random: descriptors of one photo differ by
  about 0.05 between calls).

The descriptors stay in the wrapped model's metric space (the mean of unit
vectors is re-normalised only if the model's descriptors are unit length), so
galleries built with and without augmentation can be searched together; the
calibration tables are measured with the default recipe
(``facetrace eval calibrate``). ``model_id`` is the wrapped model's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facetrace.vision.base import Chips, Embedder, Embeddings, FaceShape, RGBImage


def jittered(chip: np.ndarray, index: int) -> np.ndarray:
    """Copy ``index`` of a chip, jittered as dlib's ``jitter_image`` does, but deterministic.

    The ``index``-th copy always gets the same transform (drawn from a generator
    seeded with ``index``): rotation within +-3 degrees, the face scaled to
    97-100% of its size, shifted by up to 2% of the chip side, mirrored half the
    time. Bilinear resampling, edges replicated from the nearest pixel row.
    """
    from PIL import Image

    rng = np.random.default_rng(1000 + index)
    theta = np.deg2rad(rng.uniform(-3.0, 3.0))
    zoom = 1.0 / rng.uniform(0.97, 1.0)
    size = chip.shape[0]
    shift = rng.uniform(-0.02, 0.02, 2) * size
    mirror = bool(rng.integers(0, 2))
    c = (size - 1) / 2.0
    cos, sin = np.cos(theta) * zoom, np.sin(theta) * zoom
    # input = centre + zoom * R(theta) (output - centre) + shift
    coeffs = (
        cos,
        -sin,
        c - cos * c + sin * c + shift[0],
        sin,
        cos,
        c - sin * c - cos * c + shift[1],
    )
    src = chip[:, ::-1] if mirror else chip
    padded = np.pad(src, ((8, 8), (8, 8), (0, 0)), mode="edge")
    off = 8.0
    a, b, t0, d, e, t1 = coeffs
    shifted = (a, b, t0 + off, d, e, t1 + off)
    out = Image.fromarray(np.ascontiguousarray(padded)).transform(
        (size, size), Image.Transform.AFFINE, shifted, resample=Image.Resampling.BILINEAR
    )
    return np.asarray(out, dtype=np.uint8)


class AugmentedEmbedder:
    """Average an embedder's descriptors over flipped and/or jittered copies of each chip."""

    def __init__(self, inner: Embedder, *, flip: bool = True, jitter: int = 0) -> None:
        if jitter < 0:
            raise ValueError(f"jitter must be >= 0, got {jitter}")
        self.inner = inner
        self.flip = flip
        self.jitter = jitter
        self.model_id = inner.model_id
        self.chip_size = inner.chip_size
        self.dim = inner.dim

    def chips(self, image: RGBImage, shapes: Sequence[FaceShape]) -> Chips:
        return self.inner.chips(image, shapes)

    def _copies(self, chip: np.ndarray) -> list[np.ndarray]:
        copies = [chip]
        if self.flip:
            copies.append(np.ascontiguousarray(chip[:, ::-1]))
        copies.extend(jittered(chip, i) for i in range(self.jitter))
        return copies

    def embed(self, chips: Chips) -> Embeddings:
        """``(n, dim)`` float32: the mean descriptor over each chip's copies."""
        if chips.shape[0] == 0 or (not self.flip and not self.jitter):
            return self.inner.embed(chips)
        per = 1 + int(self.flip) + self.jitter
        batch = np.stack([c for chip in chips for c in self._copies(chip)])
        out = self.inner.embed(batch).reshape(chips.shape[0], per, -1)
        mean = out.mean(axis=1)
        norms = np.linalg.norm(out, axis=2)
        if np.allclose(norms, 1.0, atol=1e-3):
            mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(mean, dtype=np.float32)
