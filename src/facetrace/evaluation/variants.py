"""Pipeline variants for accuracy work, and the cached image -> descriptor step of every protocol.

A :class:`Describer` turns one image file into one descriptor: detect faces,
keep the largest (as :meth:`FaceTrace.verify` does), find its 5 landmarks, cut
the chip and embed it. When the detector finds nothing it walks the
:class:`Fallback` chain and records which step produced the descriptor
(:class:`How`), so a report can say how many images had no face and what was
done with them.

Detections and descriptors are cached on disk per variant (``cache_dir``), keyed
by the image's path relative to the data folder, so a rerun, or a variant that
only changes the embedding step, costs no detection time.

:func:`recipe` builds the named variants measured for docs/accuracy.md's variants
table; ``baseline`` is the plain dlib recipe (HOG with one upsampling, 5-point
landmarks, dlib's own ``compute_face_descriptor``, no jitter).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facetrace.config import Settings
from facetrace.errors import FaceTraceError
from facetrace.types import BBox
from facetrace.vision.base import (
    Aligner,
    Chips,
    Detection,
    Detector,
    Embedder,
    Embeddings,
    FaceShape,
    RGBImage,
    empty_chips,
)
from facetrace.vision.imaging import load_image


class Fallback(StrEnum):
    """What to do, in order, when the detector finds no face."""

    CNN = "cnn"
    """Run dlib's MMOD CNN detector on the image."""
    CENTRE = "centre"
    """Assume the image is centred like LFW (250x250, face in the middle) and place
    the mean LFW landmarks, scaled to the image size. Only right for aligned sets."""


class How(StrEnum):
    """Which step produced an image's descriptor."""

    DETECTED = "detected"
    CNN = "cnn"
    CENTRE = "centre"
    FAILED = "failed"


# Median dlib 5-point landmarks of the largest HOG face over lfw-dev's 3040 detected images
# (pixels; order: dlib's 5-point order). Used by Fallback.CENTRE, scaled to the image.
LFW_LANDMARKS_250 = np.array(
    [[153.0, 113.0], [137.0, 113.0], [96.0, 114.0], [112.0, 114.0], [125.0, 144.0]],
    dtype=np.float32,
)


@dataclass(frozen=True, slots=True)
class Described:
    """One image's descriptor (``(dim,)`` float32, or None when it failed) and its origin."""

    embedding: np.ndarray | None
    how: How


class PlainHogDetector:
    """dlib's HOG detector as face_recognition calls it: ``detector(image, upsample)``."""

    def __init__(self, upsample: int = 1) -> None:
        self.upsample = upsample
        self.name = f"dlib-hog-up{upsample}"
        self._lock = threading.Lock()
        self._detector: Any = None

    def detect(self, image: RGBImage) -> list[Detection]:
        import dlib

        with self._lock:
            if self._detector is None:
                self._detector = dlib.get_frontal_face_detector()
        h, w = image.shape[:2]
        rects, scores, _ = self._detector.run(image, self.upsample, 0.0)
        return [
            Detection(
                BBox(
                    max(0, r.left()), max(0, r.top()), min(w, r.right() + 1), min(h, r.bottom() + 1)
                ),
                float(s),
            )
            for r, s in zip(rects, scores, strict=True)
            if r.right() > r.left() and r.bottom() > r.top()
        ]


class DlibChipEmbedder:
    """dlib's ResNet on chips cut by dlib's ``get_face_chips``, with a choice of chip geometry.

    ``padding`` is dlib's chip padding (0.25 = the model's training geometry);
    ``cut_size`` > 150 cuts a larger chip and downsizes it to 150 with a box filter
    (less aliasing than cutting at 150). ``reference=True`` runs dlib's own
    ``compute_face_descriptor`` (slow, the baseline); otherwise the fast
    :class:`~facetrace.vision.dlib_resnet.ResNetDescriptor` (equal to 1e-4).
    """

    model_id = "dlib-resnet-v1"
    dim = 128
    chip_size = 150

    def __init__(
        self,
        *,
        padding: float = 0.25,
        cut_size: int = 150,
        reference: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        self.padding = padding
        self.cut_size = cut_size
        self.reference = reference
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._net: Any = None

    def chips(self, image: RGBImage, shapes: Sequence[FaceShape]) -> Chips:
        if not shapes:
            return empty_chips(self.chip_size)
        import dlib

        from facetrace.vision.dlib_models import full_object_detection

        objs = dlib.full_object_detections()
        for shape in shapes:
            objs.append(full_object_detection(shape))
        cut = dlib.get_face_chips(image, objs, size=self.cut_size, padding=self.padding)
        out = []
        for c in cut:
            arr = np.asarray(c, dtype=np.uint8)
            if self.cut_size != self.chip_size:
                arr = np.asarray(
                    Image.fromarray(arr).resize(
                        (self.chip_size, self.chip_size), Image.Resampling.BOX
                    )
                )
            out.append(arr)
        return np.stack(out)

    def _load(self) -> Any:
        with self._lock:
            if self._net is None:
                if self.reference:
                    import dlib

                    from facetrace.vision.dlib_models import model_path

                    self._net = dlib.face_recognition_model_v1(str(model_path("resnet")))
                else:
                    from facetrace.vision.dlib_resnet import ResNetDescriptor

                    self._net = ResNetDescriptor(cache_dir=self.cache_dir, threads=1)
            return self._net

    def embed(self, chips: Chips) -> Embeddings:
        if chips.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        net = self._load()
        if self.reference:
            batch = [np.ascontiguousarray(c) for c in chips]
            return np.asarray(
                [np.asarray(d) for d in net.compute_face_descriptor(batch)], dtype=np.float32
            )
        return np.asarray(net.compute(np.ascontiguousarray(chips)), dtype=np.float32)


def centre_shape(image: RGBImage) -> FaceShape:
    """Fallback.CENTRE: the mean LFW landmarks scaled to this image's size."""
    h, w = image.shape[:2]
    pts = LFW_LANDMARKS_250 * np.array([w / 250.0, h / 250.0], dtype=np.float32)
    box = BBox(round(w * 0.3), round(h * 0.3), round(w * 0.7), round(h * 0.7))
    return FaceShape(Detection(box, 0.0), pts.astype(np.float32))


class _JsonCache:
    """A ``{key: value}`` JSON file, loaded once and written back on :meth:`flush`."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        self.dirty = 0
        if path is not None and path.is_file():
            self.data = json.loads(path.read_text())

    def flush(self) -> None:
        if self.path is None or not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.data))
        tmp.replace(self.path)
        self.dirty = 0


class Describer:
    """Image file -> the largest face's descriptor, with fallbacks and an on-disk cache.

    ``key`` names the variant (detector + fallbacks + embedder); ``detect_key``
    names the detection step alone, so variants sharing it share detections.
    """

    def __init__(
        self,
        *,
        detector: Detector,
        aligner: Aligner,
        embedder: Embedder,
        fallbacks: Sequence[Fallback] = (Fallback.CNN,),
        key: str | None = None,
        detect_key: str | None = None,
        cache_dir: Path | None = None,
        max_image_bytes: int = 50 * 1024 * 1024,
        max_image_pixels: int = 80_000_000,
    ) -> None:
        self.detector = detector
        self.aligner = aligner
        self.embedder = embedder
        self.fallbacks = tuple(fallbacks)
        self.max_image_bytes = max_image_bytes
        self.max_image_pixels = max_image_pixels
        fb = "+".join(f.value for f in self.fallbacks) or "none"
        self.detect_key = detect_key or detector.name
        self.key = key or f"{self.detect_key}_{fb}_{embedder.model_id}"
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.key)
        safe_det = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.detect_key)
        self._shapes = _JsonCache(cache_dir / f"shapes_{safe_det}.json" if cache_dir else None)
        self._cnn = _JsonCache(cache_dir / "shapes_cnn.json" if cache_dir else None)
        self._embs = _JsonCache(cache_dir / f"desc_{safe}.json" if cache_dir else None)
        self._cnn_detector: Detector | None = None
        self.seconds = 0.0
        """Seconds spent computing (not reading from the cache)."""

    @staticmethod
    def _encode(shapes: Sequence[FaceShape]) -> list[list[float]]:
        out = []
        for s in shapes:
            b = s.detection.bbox
            out.append(
                [b.left, b.top, b.right, b.bottom, s.detection.confidence]
                + [float(v) for v in s.landmarks.ravel()]
            )
        return out

    @staticmethod
    def _decode(rows: list[list[float]]) -> list[FaceShape]:
        return [
            FaceShape(
                Detection(BBox(int(r[0]), int(r[1]), int(r[2]), int(r[3])), float(r[4])),
                np.asarray(r[5:], dtype=np.float32).reshape(-1, 2),
            )
            for r in rows
        ]

    def _detect(
        self, cache: _JsonCache, detector: Detector, key: str, image: RGBImage
    ) -> tuple[list[FaceShape], float]:
        """The largest face's shape (or none) and the seconds detection took when computed."""
        hit = cache.data.get(key)
        if hit is None:
            t0 = time.perf_counter()
            dets = detector.detect(image)
            dets.sort(key=lambda d: -(d.bbox.width * d.bbox.height))
            shapes = self.aligner.landmarks(image, dets[:1])
            hit = {"s": self._encode(shapes), "t": time.perf_counter() - t0}
            cache.data[key] = hit
            cache.dirty += 1
        return self._decode(hit["s"]), float(hit["t"])

    def describe(self, path: Path, key: str) -> Described:
        """The descriptor of the largest face in ``path``; ``key`` identifies it in caches.

        Adds to :attr:`seconds` the time the work took when it was done (read
        from the cache on a hit), so speed figures survive cached reruns.
        """
        hit = self._embs.data.get(key)
        if hit is None:
            result, secs = self._compute(path, key)
            hit = {
                "e": None if result.embedding is None else [float(v) for v in result.embedding],
                "how": result.how.value,
                "t": secs,
            }
            self._embs.data[key] = hit
            self._embs.dirty += 1
            if self._embs.dirty >= 200:
                self.flush()
        self.seconds += float(hit["t"])
        emb = None if hit["e"] is None else np.asarray(hit["e"], dtype=np.float32)
        return Described(emb, How(hit["how"]))

    def _compute(self, path: Path, key: str) -> tuple[Described, float]:
        t0 = time.perf_counter()
        try:
            image = load_image(
                path, max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels
            ).pixels
        except FaceTraceError:
            return Described(None, How.FAILED), time.perf_counter() - t0
        decode = time.perf_counter() - t0
        shapes, secs = self._detect(self._shapes, self.detector, key, image)
        how = How.DETECTED
        for fb in self.fallbacks:
            if shapes:
                break
            if fb is Fallback.CNN:
                if self._cnn_detector is None:
                    from facetrace.vision.dlib_models import CnnDetector

                    self._cnn_detector = CnnDetector(40, 1600)
                shapes, more = self._detect(self._cnn, self._cnn_detector, key, image)
                secs += more
                how = How.CNN
            else:
                shapes = [centre_shape(image)]
                how = How.CENTRE
        if not shapes:
            return Described(None, How.FAILED), decode + secs
        t1 = time.perf_counter()
        chips = self.embedder.chips(image, shapes[:1])
        emb = self.embedder.embed(chips)[0]
        secs += decode + time.perf_counter() - t1
        return Described(np.ascontiguousarray(emb, dtype=np.float32), how), secs

    def flush(self) -> None:
        """Write the caches to disk."""
        for cache in (self._shapes, self._cnn, self._embs):
            cache.flush()


RECIPES: dict[str, str] = {
    "baseline": "plain dlib: HOG upsample 1, 5-point, compute_face_descriptor, no jitter; "
    "no fallback",
    "default": "the engine's default: HOG (small-face pass only without a close-up face), "
    "CNN fallback, chip 150 pad 0.25, flip averaging",
    "flip": "HOG always upsampled for 40 px faces, CNN fallback, chip 150 pad 0.25, flip averaging",
    "noflip": "as flip, without flip averaging",
    "nofallback": "as flip, without the CNN fallback",
    "hog-up2": "as flip, HOG upsampled for 20 px faces",
    "pad0.2": "as flip, chip padding 0.20",
    "pad0.3": "as flip, chip padding 0.30",
    "cut300": "as flip, chip cut at 300 px and box-downsized to 150",
    "jitter10": "as flip, plus 10 jittered copies (12 descriptors per face)",
}
"""The variants measured for docs/accuracy.md's variants table, by name."""


def recipe(name: str, cache_dir: Path | None, settings: Settings | None = None) -> Describer:
    """The :class:`Describer` of a named variant (see :data:`RECIPES`)."""
    from facetrace.vision.dlib_models import FivePointAligner, HogDetector
    from facetrace.vision.tta import AugmentedEmbedder

    if name not in RECIPES:
        raise ValueError(f"unknown variant {name!r}; one of {', '.join(RECIPES)}")
    s = settings or Settings()
    resnet_cache = cache_dir / "resnet" if cache_dir else None
    aligner = FivePointAligner()
    if name == "baseline":
        return Describer(
            detector=PlainHogDetector(1),
            aligner=aligner,
            embedder=DlibChipEmbedder(reference=True),
            fallbacks=(),
            key="baseline",
            cache_dir=cache_dir,
        )
    min_face = 20 if name == "hog-up2" else s.min_face_px
    # "always": every image is upsampled so faces of min_face px reach HOG's window;
    # "auto" (the engine's default) skips that pass when a close-up face was found.
    small = "auto" if name == "default" else "always"
    detector = HogDetector(min_face, s.max_detect_side, small_faces=small)
    padding = {"pad0.2": 0.2, "pad0.3": 0.3}.get(name, 0.25)
    cut = 300 if name == "cut300" else 150
    inner = DlibChipEmbedder(padding=padding, cut_size=cut, cache_dir=resnet_cache)
    embedder: Embedder = AugmentedEmbedder(
        inner, flip=name != "noflip", jitter=10 if name == "jitter10" else 0
    )
    fallbacks = () if name == "nofallback" else (Fallback.CNN,)
    return Describer(
        detector=detector,
        aligner=aligner,
        embedder=embedder,
        fallbacks=fallbacks,
        key=name,
        detect_key=f"hog-min{min_face}-max{s.max_detect_side}"
        + ("" if small == "always" else f"-{small}"),
        cache_dir=cache_dir,
    )
