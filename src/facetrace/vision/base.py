"""Vision protocols: detect faces, find their landmarks, embed aligned chips.

The recognition model depends on detection and alignment: an :class:`Embedder`
names the chip it needs (:attr:`Embedder.chip_size`) and cuts its own chips from
the landmarks an :class:`Aligner` found, since each model was trained on its own
alignment.

Array contracts:

- images: ``(h, w, 3)`` uint8 RGB, C-contiguous;
- landmarks: ``(5, 2)`` float32 ``(x, y)`` pixels, dlib's 5-point order
  (outer and inner corner of one eye, outer and inner corner of the other eye, base of the nose);
- chips: ``(n, s, s, 3)`` uint8 RGB with ``s = embedder.chip_size``;
- embeddings: ``(n, embedder.dim)`` float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from facetrace.types import BBox

RGBImage = npt.NDArray[np.uint8]
Chips = npt.NDArray[np.uint8]
Embeddings = npt.NDArray[np.float32]
Landmarks = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Detection:
    """A detected face box with the detector's confidence (detector-specific units)."""

    bbox: BBox
    confidence: float


@dataclass(frozen=True, slots=True)
class FaceShape:
    """A detection with its 5 landmarks, ``(5, 2)`` float32."""

    detection: Detection
    landmarks: Landmarks


class Detector(Protocol):
    """Finds face boxes in an image."""

    name: str

    def detect(self, image: RGBImage) -> list[Detection]:
        """Return the faces found, in no particular order."""
        ...


class Aligner(Protocol):
    """Finds facial landmarks inside detected boxes."""

    name: str

    def landmarks(self, image: RGBImage, detections: Sequence[Detection]) -> list[FaceShape]:
        """Return one :class:`FaceShape` per detection, in the same order."""
        ...


class Embedder(Protocol):
    """Turns aligned face chips into descriptors."""

    model_id: str
    dim: int
    chip_size: int

    def chips(self, image: RGBImage, shapes: Sequence[FaceShape]) -> Chips:
        """Cut ``(n, chip_size, chip_size, 3)`` aligned chips as this model expects."""
        ...

    def embed(self, chips: Chips) -> Embeddings:
        """Return ``(n, dim)`` float32 descriptors of the chips."""
        ...


def empty_chips(size: int) -> Chips:
    """A ``(0, size, size, 3)`` chip batch."""
    return np.zeros((0, size, size, 3), dtype=np.uint8)
