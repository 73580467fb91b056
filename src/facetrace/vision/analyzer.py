"""FaceAnalyzer: one photo in, every face out (box, landmarks, quality, descriptor, thumbnail).

The analyzer is what a pipeline worker runs; its inputs and outputs are plain,
picklable values so the unit of work can move to another process or machine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from facetrace.config import DetectorKind, EmbedderKind, Settings
from facetrace.errors import ConfigError
from facetrace.types import BBox
from facetrace.vision.base import (
    Aligner,
    Detector,
    Embedder,
    Embeddings,
    FaceShape,
    RGBImage,
)
from facetrace.vision.imaging import encode_jpeg


@dataclass(frozen=True, slots=True)
class AnalyzedFace:
    """One face of a photo.

    ``embedding``: ``(dim,)`` float32. ``landmarks``: ``(5, 2)`` float32 pixels.
    ``quality``: in [0, 1], the geometric mean of size, sharpness and detector
    confidence scores (see :func:`quality_score`). ``thumbnail``: JPEG bytes.
    """

    bbox: BBox
    confidence: float
    quality: float
    landmarks: np.ndarray
    embedding: np.ndarray
    thumbnail: bytes


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def sharpness(chip: RGBImage) -> float:
    """Variance of the 4-neighbour Laplacian of the grey chip (grey levels squared)."""
    grey = chip.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    lap = (
        -4.0 * grey[1:-1, 1:-1]
        + grey[:-2, 1:-1]
        + grey[2:, 1:-1]
        + grey[1:-1, :-2]
        + grey[1:-1, 2:]
    )
    return float(lap.var())


def quality_score(bbox: BBox, confidence: float, chip: RGBImage) -> float:
    """Face quality in [0, 1]: geometric mean of three scores, each in (0, 1].

    - size: ``min(side / 100 px, 1)``, faces of 100 px and up score 1;
    - sharpness: ``v / (v + 100)`` with ``v`` the chip's Laplacian variance;
    - confidence: ``sigmoid(2 * detector score)``.
    """
    size = min(max(min(bbox.width, bbox.height), 1) / 100.0, 1.0)
    v = sharpness(chip)
    sharp = v / (v + 100.0)
    conf = _sigmoid(2.0 * confidence)
    return float((size * max(sharp, 1e-6) * conf) ** (1.0 / 3.0))


def thumbnail(image: RGBImage, bbox: BBox, side: int) -> bytes:
    """A square JPEG of the face box with a 25% margin, ``side`` pixels wide."""
    h, w = image.shape[:2]
    cx, cy = (bbox.left + bbox.right) / 2, (bbox.top + bbox.bottom) / 2
    half = max(bbox.width, bbox.height) * 0.625
    box = (
        max(0, int(cx - half)),
        max(0, int(cy - half)),
        min(w, int(cx + half) + 1),
        min(h, int(cy + half) + 1),
    )
    crop = Image.fromarray(image).crop(box)
    crop.thumbnail((side, side), Image.Resampling.LANCZOS)
    return encode_jpeg(np.asarray(crop), quality=80)


class FaceAnalyzer:
    """Detect, align, embed and describe every face of an image."""

    def __init__(
        self,
        detector: Detector,
        aligner: Aligner,
        embedder: Embedder,
        thumbnail_px: int = 112,
    ) -> None:
        self.detector = detector
        self.aligner = aligner
        self.embedder = embedder
        self.thumbnail_px = thumbnail_px

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    def shapes(self, image: RGBImage) -> list[FaceShape]:
        """Detected faces with landmarks, largest first."""
        detections = self.detector.detect(image)
        detections.sort(key=lambda d: -(d.bbox.width * d.bbox.height))
        return self.aligner.landmarks(image, detections)

    def analyze(
        self,
        image: RGBImage,
        *,
        with_thumbnails: bool = True,
        timings: dict[str, float] | None = None,
    ) -> list[AnalyzedFace]:
        """Every face of ``image``, largest first.

        ``timings``, when given, receives seconds spent in ``detect`` (detection
        and landmarks), ``embed`` (chips and descriptors) and ``describe``.
        """
        t0 = time.perf_counter()
        shapes = self.shapes(image)
        t1 = time.perf_counter()
        if not shapes:
            if timings is not None:
                timings["detect"] = t1 - t0
            return []
        chips = self.embedder.chips(image, shapes)
        embeddings = self.embedder.embed(chips)
        t2 = time.perf_counter()
        faces = []
        for shape, chip, emb in zip(shapes, chips, embeddings, strict=True):
            det = shape.detection
            faces.append(
                AnalyzedFace(
                    bbox=det.bbox,
                    confidence=det.confidence,
                    quality=quality_score(det.bbox, det.confidence, chip),
                    landmarks=shape.landmarks,
                    embedding=np.ascontiguousarray(emb, dtype=np.float32),
                    thumbnail=thumbnail(image, det.bbox, self.thumbnail_px)
                    if with_thumbnails
                    else b"",
                )
            )
        if timings is not None:
            timings["detect"] = t1 - t0
            timings["embed"] = t2 - t1
            timings["describe"] = time.perf_counter() - t2
        return faces

    def embed_image(self, image: RGBImage) -> Embeddings:
        """``(n, dim)`` descriptors of every face, largest first, without thumbnails."""
        faces = self.analyze(image, with_thumbnails=False)
        if not faces:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.stack([f.embedding for f in faces])


def build_analyzer(settings: Settings) -> FaceAnalyzer:
    """The analyzer the settings ask for. Nothing is loaded until first use."""
    from facetrace.vision.dlib_models import (
        CnnDetector,
        DlibResNetEmbedder,
        FivePointAligner,
        HogDetector,
    )

    detector: Detector
    if settings.detector is DetectorKind.HOG:
        detector = HogDetector(
            settings.min_face_px, settings.max_detect_side, small_faces=settings.small_face_pass
        )
    else:
        detector = CnnDetector(settings.min_face_px, min(settings.max_detect_side, 1600))
    embedder: Embedder
    if settings.embedder is EmbedderKind.DLIB:
        embedder = DlibResNetEmbedder(
            runtime=settings.descriptor_runtime.value, cache_dir=settings.home / "models"
        )
    else:
        if settings.onnx_model_path is None:
            raise ConfigError("embedder=onnx needs FACETRACE_ONNX_MODEL_PATH (a local .onnx file)")
        from facetrace.vision.onnx_embedder import OnnxEmbedder

        embedder = OnnxEmbedder(settings.onnx_model_path)
    if settings.embed_flip or settings.embed_jitter:
        # Mirror (and jitter) averaging: same model and space, fewer false non-matches.
        from facetrace.vision.tta import AugmentedEmbedder

        embedder = AugmentedEmbedder(
            embedder, flip=settings.embed_flip, jitter=settings.embed_jitter
        )
    return FaceAnalyzer(detector, FivePointAligner(), embedder, settings.thumbnail_px)
