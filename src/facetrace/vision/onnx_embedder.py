"""An ArcFace-style ONNX face recognition model as an :class:`~facetrace.vision.base.Embedder`.

What the model must be (the insightface ``w600k_r50.onnx`` / ``glintr100.onnx``
family is): one input, ``(n, 3, 112, 112)`` float32 NCHW (the batch dimension
may be fixed at 1 or dynamic), RGB channels scaled as ``(x - 127.5) / 128``;
one output ``(n, d)`` for any ``d``. Outputs are L2-normalised here, so
distances are Euclidean between unit vectors (in ``[0, 2]``).

Alignment: ArcFace models are trained on 112x112 chips warped by a similarity
transform that puts 5 landmarks (eye centres, nose tip, mouth corners) on a
fixed template. dlib's 5-point model gives other points (two corners per eye
and the base of the nose), so this embedder fits the similarity transform
(least squares, Umeyama) on 3 derived points: each eye centre (the mean of its
two corners) to the template's eye centre, and dlib's nose *base* to the
template's nose *tip*. The nose base sits a few pixels below the tip, so chips
come out slightly smaller and higher than insightface's own alignment: an
approximation that costs some accuracy with a real model; measure it with
``facetrace eval pairs`` and calibrate with ``facetrace eval calibrate``.

``model_id`` is ``"onnx:" + sha256(file)[:16]``: two different files never
share a gallery or a calibration table.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facetrace.errors import MissingDependencyError, ModelError
from facetrace.vision.base import Chips, Embeddings, FaceShape, RGBImage, empty_chips

CHIP_SIZE = 112

ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],  # eye centre, image left
        [73.5318, 51.5014],  # eye centre, image right
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # mouth corner, image left
        [70.7299, 92.2041],  # mouth corner, image right
    ],
    dtype=np.float64,
)
"""insightface's 5-point template for 112x112 ArcFace chips, ``(x, y)`` pixels."""


def file_model_id(path: Path) -> str:
    """``"onnx:" + sha256(file)[:16]``."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ModelError(f"cannot read ONNX model {path}: {exc.strerror or exc}") from exc
    return "onnx:" + digest.hexdigest()[:16]


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``(2, 3)`` least-squares similarity (rotation, uniform scale, shift) mapping src to dst.

    Umeyama's method; ``src``, ``dst``: ``(k, 2)`` points, ``k >= 2``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / src.shape[0]
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    var = (s * s).sum() / src.shape[0]
    scale = float(np.trace(np.diag(sig) @ sign) / var) if var > 0 else 1.0
    out = np.empty((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mu_d - scale * rot @ mu_s
    return out


def arcface_points(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dlib 5-point landmarks -> ``(3, 2)`` source points and their ``(3, 2)`` template targets.

    Eye centres are the means of dlib's corner pairs (0, 1) and (2, 3), ordered
    by x (image left first); the nose base (4) maps to the template nose tip.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (5, 2):
        raise ValueError(f"landmarks must be (5, 2), got {pts.shape}")
    eyes = sorted([pts[0:2].mean(0), pts[2:4].mean(0)], key=lambda p: float(p[0]))
    src = np.stack([eyes[0], eyes[1], pts[4]])
    return src, ARCFACE_TEMPLATE[:3]


def align_chip(image: RGBImage, landmarks: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
    """Warp ``image`` into a ``(size, size, 3)`` uint8 ArcFace chip (bilinear)."""
    src, dst = arcface_points(landmarks)
    fwd = similarity_transform(src, dst * (size / CHIP_SIZE))
    # PIL wants the inverse map: output pixel -> input pixel.
    full = np.vstack([fwd, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)[:2]
    warped = Image.fromarray(image).transform(
        (size, size),
        Image.Transform.AFFINE,
        tuple(float(v) for v in inv.ravel()),
        resample=Image.Resampling.BILINEAR,
    )
    return np.asarray(warped, dtype=np.uint8)


class OnnxEmbedder:
    """Run a local ArcFace-style ONNX model (see the module docstring for its contract).

    The session is created when the embedder is built (the index needs ``dim``
    at once); ``threads`` is ONNX Runtime's intra-op thread count.
    """

    chip_size = CHIP_SIZE

    def __init__(self, path: Path, threads: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"ONNX model {self.path} does not exist")
        self.threads = threads
        self.model_id = file_model_id(self.path)
        self._lock = threading.Lock()
        self._session: Any = None
        self._input = ""
        self._fixed_batch: int | None = None
        self._dim: int | None = None
        self._load()
        if self._dim is None:  # pragma: no cover - _load sets it or raises
            raise ModelError(f"cannot tell the output size of {self.path.name}")
        self.dim: int = self._dim
        """Descriptor length, read from the model."""

    def _load(self) -> Any:
        if self._session is not None:
            return self._session
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime as ort
                except ImportError as exc:
                    raise MissingDependencyError(
                        "the ONNX embedder needs onnxruntime: pip install 'facetrace[onnx]'"
                    ) from exc
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                try:
                    session = ort.InferenceSession(
                        str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
                    )
                except Exception as exc:  # onnxruntime raises its own exception types
                    raise ModelError(f"cannot load ONNX model {self.path}: {exc}") from exc
                inputs = session.get_inputs()
                if len(inputs) != 1:
                    raise ModelError(f"{self.path.name} must have one input, has {len(inputs)}")
                shape = list(inputs[0].shape)
                if len(shape) != 4 or shape[1] != 3 or shape[2:] != [CHIP_SIZE, CHIP_SIZE]:
                    raise ModelError(
                        f"{self.path.name} input must be (n, 3, 112, 112) NCHW, got {shape}"
                    )
                self._input = inputs[0].name
                self._fixed_batch = shape[0] if isinstance(shape[0], int) else None
                out_shape = session.get_outputs()[0].shape
                if len(out_shape) == 2 and isinstance(out_shape[1], int):
                    self._dim = int(out_shape[1])
                self._session = session
                if self._dim is None:
                    probe = np.zeros((1, CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8)
                    self._dim = int(self._run(probe).shape[1])
            return self._session

    def chips(self, image: RGBImage, shapes: Sequence[FaceShape]) -> Chips:
        if not shapes:
            return empty_chips(self.chip_size)
        return np.stack([align_chip(image, s.landmarks) for s in shapes])

    def _run(self, chips: Chips) -> np.ndarray:
        x = (chips.astype(np.float32) - 127.5) / 128.0
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        step = self._fixed_batch or 32
        outs = []
        for i in range(0, x.shape[0], step):
            try:
                out = self._session.run(None, {self._input: x[i : i + step]})[0]
            except Exception as exc:  # onnxruntime raises its own exception types
                raise ModelError(f"ONNX model {self.path.name} failed: {exc}") from exc
            outs.append(np.asarray(out, dtype=np.float32).reshape(x[i : i + step].shape[0], -1))
        return np.concatenate(outs)

    def embed(self, chips: Chips) -> Embeddings:
        """``(n, dim)`` float32 unit vectors from ``(n, 112, 112, 3)`` uint8 RGB chips."""
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"chips must be (n, 112, 112, 3) uint8, got {chips.shape}")
        if chips.dtype != np.uint8:
            raise ValueError("chips must be uint8")
        self._load()
        if chips.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._run(chips)
        if out.shape[1] != self.dim:
            raise ModelError(f"{self.path.name} returned {out.shape[1]}-D, expected {self.dim}")
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.ascontiguousarray(out / np.maximum(norms, 1e-12), dtype=np.float32)
