"""Read dlib's binary serialization of its face-recognition ResNet into NumPy arrays.

dlib (``dlib/serialize.h``, ``dlib/dnn/core.h``, ``layers.h``, ``tensor.h``)
writes a network as nested layers, outermost first:

- integers are *packed*: one byte whose low nibble is the byte count and whose
  bit 7 is the sign, then that many little-endian magnitude bytes;
- ``float``/``double`` fields are a packed 64-bit mantissa and a packed 16-bit
  exponent (value = mantissa * 2**exponent); ``bool`` is the character '0' or '1';
  strings are a packed length and their bytes;
- tensors (version 2) are a packed version, ``num_samples, k, nr, nc``, then the
  values as little-endian IEEE float32;
- ``add_layer`` writes its version, then its subnetwork, then its layer details
  and its state (flags and empty gradient tensors); tag and skip layers write a
  version and their subnetwork only; so every version number comes first (top
  down), then the input layer, then each layer's details bottom up.

:func:`read_metric_net` understands the one network the ``face_recognition``
model uses (dlib's ``anet_type``), and checks every field it reads::

    loss_metric<fc_no_bias<128, avg_pool_everything<
        5 levels of residual blocks <
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>

A residual block is ``relu(add_prev(block(x), x))`` with
``block = affine(con3x3(relu(affine(con3x3(x)))))``; a down-sampling block
adds ``avg_pool<2,2,2,2>(x)`` instead of ``x``, and dlib's addition of tensors
of different shapes zero-pads the smaller one at the end of each axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facetrace.errors import ModelError

FloatArray = npt.NDArray[np.float32]

# dlib's float_details marks non-finite values with these exponents.
_INF_EXPONENTS = {32000: np.inf, 32001: -np.inf, 32002: np.nan}


@dataclass(frozen=True, slots=True)
class InputLayer:
    """``input_rgb_image_sized``: pixel value minus ``mean_rgb``, divided by 256, planar RGB."""

    mean_rgb: tuple[float, float, float]
    rows: int
    cols: int


@dataclass(frozen=True, slots=True, eq=False)
class Conv:
    """2-D cross-correlation: ``weight`` ``(out, in, kh, kw)`` float32, ``bias`` ``(out,)``."""

    weight: FloatArray
    bias: FloatArray
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, slots=True, eq=False)
class Affine:
    """Per-channel ``x * gamma + beta`` (batch norm folded); both ``(channels,)`` float32."""

    gamma: FloatArray
    beta: FloatArray


@dataclass(frozen=True, slots=True)
class Pool:
    """Max or average pooling; ``window == (0, 0)`` means over the whole input."""

    kind: str  # "max" or "avg"
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, slots=True, eq=False)
class ResidualBlock:
    """``relu(affine2(conv2(relu(affine1(conv1(x))))) + shortcut(x))``.

    ``down`` is ``None`` for the identity shortcut, else the pooling applied to ``x``.
    """

    conv1: Conv
    affine1: Affine
    conv2: Conv
    affine2: Affine
    down: Pool | None


@dataclass(frozen=True, slots=True, eq=False)
class MetricNet:
    """The whole descriptor network, parameters as float32 arrays.

    ``fc_weight`` is ``(inputs, outputs)``: the descriptor is ``pooled @ fc_weight``.
    """

    input: InputLayer
    stem_conv: Conv
    stem_affine: Affine
    stem_pool: Pool
    blocks: tuple[ResidualBlock, ...]
    head_pool: Pool
    fc_weight: FloatArray


class _Reader:
    """Cursor over dlib's serialized bytes; every error becomes :class:`ModelError`."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self._data):
            raise ModelError(f"dlib model file ends early (wanted {n} bytes at {self.pos})")
        chunk = self._data[self.pos : end]
        self.pos = end
        return chunk

    def int_(self) -> int:
        head = self._take(1)[0]
        size = head & 0x0F
        if size > 8:
            raise ModelError(f"bad packed integer at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if head & 0x80 else value

    def float_(self) -> float:
        mantissa = self.int_()
        exponent = self.int_()
        if exponent in _INF_EXPONENTS:
            return float(_INF_EXPONENTS[exponent])
        return float(np.ldexp(float(mantissa), exponent))

    def bool_(self) -> bool:
        char = self._take(1)
        if char not in (b"0", b"1"):
            raise ModelError(f"bad boolean at byte {self.pos - 1}")
        return char == b"1"

    def string(self) -> str:
        size = self.int_()
        if size > 1 << 16:
            raise ModelError(f"implausible string length {size} at byte {self.pos}")
        return self._take(size).decode("latin-1")

    def peek_string(self) -> str | None:
        """The string at the cursor if one plausibly starts there; the cursor stays."""
        start = self.pos
        try:
            size = self.int_()
            if not 0 < size < 64:
                return None
            text = self._take(size)
        except ModelError:
            return None
        finally:
            self.pos = start
        decoded = text.decode("latin-1")
        return decoded if decoded.isascii() and decoded.isprintable() else None

    def expect(self, name: str) -> None:
        found = self.string()
        if found != name:
            raise ModelError(f"expected dlib layer {name!r}, found {found!r}")

    def tensor(self) -> FloatArray:
        """A ``(num_samples, k, nr, nc)`` float32 tensor (version 2 only)."""
        version = self.int_()
        if version != 2:
            raise ModelError(f"unsupported dlib tensor serialization version {version}")
        shape = tuple(self.int_() for _ in range(4))
        if min(shape) < 0:
            raise ModelError(f"bad tensor shape {shape}")
        count = int(np.prod(shape))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.int_()
        if version != 1:
            raise ModelError(f"unsupported dlib alias_tensor version {version}")
        n, k, nr, nc = (self.int_() for _ in range(4))
        return n, k, nr, nc

    def at_end(self) -> bool:
        return self.pos == len(self._data)


def _pair(reader: _Reader) -> tuple[int, int]:
    return reader.int_(), reader.int_()


def _read_input(reader: _Reader) -> InputLayer:
    reader.expect("input_rgb_image_sized")
    mean = (reader.float_(), reader.float_(), reader.float_())
    rows, cols = _pair(reader)
    return InputLayer(mean_rgb=mean, rows=rows, cols=cols)


def _read_con(reader: _Reader) -> Conv:
    params = reader.tensor().reshape(-1)
    num_filters = reader.int_()
    nr, nc = _pair(reader)
    stride = _pair(reader)
    padding = _pair(reader)
    filters = reader.alias_tensor()
    biases = reader.alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        reader.float_()
    n_weights = int(np.prod(filters))
    if (
        filters[0] != num_filters
        or filters[2:] != (nr, nc)
        or biases != (1, num_filters, 1, 1)
        or params.size != n_weights + num_filters
    ):
        raise ModelError(f"inconsistent dlib con_ layer: filters {filters}, params {params.size}")
    weight = params[:n_weights].reshape(filters).copy()
    bias = params[n_weights:].copy()
    return Conv(weight=weight, bias=bias, stride=stride, padding=padding)


def _read_affine(reader: _Reader) -> Affine:
    params = reader.tensor().reshape(-1)
    gamma = reader.alias_tensor()
    beta = reader.alias_tensor()
    mode = reader.int_()
    channels = gamma[1]
    if mode != 0 or gamma != (1, channels, 1, 1) or beta != gamma or params.size != 2 * channels:
        raise ModelError(f"unsupported dlib affine_ layer: mode {mode}, gamma {gamma}")
    return Affine(gamma=params[:channels].copy(), beta=params[channels:].copy())


def _read_pool(reader: _Reader, kind: str) -> Pool:
    window = _pair(reader)
    stride = _pair(reader)
    padding = _pair(reader)
    return Pool(kind=kind, window=window, stride=stride, padding=padding)


def _read_fc(reader: _Reader) -> FloatArray:
    num_outputs = reader.int_()
    num_inputs = reader.int_()
    params = reader.tensor().reshape(-1)
    weights = reader.alias_tensor()
    reader.alias_tensor()  # biases: unset for fc_no_bias
    bias_mode = reader.int_()
    for _ in range(4):
        reader.float_()
    if bias_mode != 1 or weights != (num_inputs, num_outputs, 1, 1):
        raise ModelError(f"expected dlib fc_no_bias, found bias mode {bias_mode}")
    if params.size != num_inputs * num_outputs:
        raise ModelError("inconsistent dlib fc_ layer parameters")
    return params.reshape(num_inputs, num_outputs).copy()


# One layer's details, bottom up: (name, parsed value or None).
_Layer = tuple[str, object]


def _read_details(reader: _Reader) -> _Layer:
    name = reader.string()
    if name == "con_4":
        return name, _read_con(reader)
    if name == "affine_":
        return name, _read_affine(reader)
    if name == "max_pool_2":
        return name, _read_pool(reader, "max")
    if name == "avg_pool_2":
        return name, _read_pool(reader, "avg")
    if name == "fc_2":
        return name, _read_fc(reader)
    if name in ("relu_", "add_prev_"):
        return name, None
    raise ModelError(f"unsupported dlib layer {name!r}")


def _read_state(reader: _Reader, tensors: int) -> None:
    """Skip an add_layer's flags and (normally empty) cached tensors."""
    for _ in range(3):
        reader.bool_()
    for _ in range(tensors):
        reader.tensor()


def _read_layers(reader: _Reader) -> tuple[InputLayer, list[_Layer], int]:
    """Input layer, computational layers bottom up, and the count of tag/skip layers."""
    versions: list[int] = []
    while True:
        versions.append(reader.int_())
        if reader.peek_string() == "input_rgb_image_sized":
            break
        if len(versions) > 10_000:
            raise ModelError("no input layer found in dlib model file")
    bottom = versions.pop()
    if bottom not in (2, 3):
        raise ModelError(f"unsupported dlib add_layer version {bottom}")
    input_layer = _read_input(reader)
    layers = [_read_details(reader)]
    _read_state(reader, tensors=3)
    if bottom == 3:
        reader.int_()  # sample expansion factor
    wrappers = 0
    for version in reversed(versions):
        if version == 2:  # add_layer
            layers.append(_read_details(reader))
            _read_state(reader, tensors=3)
        elif version == 1:  # tag or skip layer: nothing after its subnetwork
            wrappers += 1
        else:
            raise ModelError(f"unsupported dlib layer version {version}")
    return input_layer, layers, wrappers


def _take_block(layers: list[_Layer], i: int) -> tuple[ResidualBlock, int]:
    names = [name for name, _ in layers[i : i + 8]]
    plain = ["con_4", "affine_", "relu_", "con_4", "affine_", "add_prev_", "relu_"]
    down = ["con_4", "affine_", "relu_", "con_4", "affine_", "avg_pool_2", "add_prev_", "relu_"]
    if names[:7] == plain:
        pool, used = None, 7
    elif names == down:
        pool, used = layers[i + 5][1], 8
    else:
        raise ModelError(f"unexpected dlib layer sequence at layer {i}: {names}")
    c1, a1, c2, a2 = (layers[i + j][1] for j in (0, 1, 3, 4))
    if not (
        isinstance(c1, Conv)
        and isinstance(a1, Affine)
        and isinstance(c2, Conv)
        and isinstance(a2, Affine)
        and (pool is None or isinstance(pool, Pool))
    ):
        raise ModelError(f"unexpected dlib layer types at layer {i}")
    return ResidualBlock(conv1=c1, affine1=a1, conv2=c2, affine2=a2, down=pool), i + used


def read_metric_net(data: bytes) -> MetricNet:
    """Parse the bytes of ``dlib_face_recognition_resnet_model_v1.dat``.

    Raises :class:`ModelError` if the bytes are not that network in a layout this
    reader knows (any other layer, version or parameter shape).
    """
    reader = _Reader(data)
    if reader.int_() != 1:
        raise ModelError("unsupported dlib loss layer version")
    reader.expect("loss_metric_2")
    reader.float_()  # margin
    reader.float_()  # distance threshold
    input_layer, layers, wrappers = _read_layers(reader)
    if not reader.at_end():
        raise ModelError(f"{len(data) - reader.pos} unexpected bytes after the dlib network")

    names = [name for name, _ in layers]
    if names[:4] != ["con_4", "affine_", "relu_", "max_pool_2"] or names[-2:] != [
        "avg_pool_2",
        "fc_2",
    ]:
        raise ModelError(f"unexpected dlib network layout: {names[:4]} ... {names[-2:]}")
    stem_conv, stem_affine, stem_pool = layers[0][1], layers[1][1], layers[3][1]
    head_pool, fc_weight = layers[-2][1], layers[-1][1]
    if not (
        isinstance(stem_conv, Conv)
        and isinstance(stem_affine, Affine)
        and isinstance(stem_pool, Pool)
        and isinstance(head_pool, Pool)
        and isinstance(fc_weight, np.ndarray)
    ):
        raise ModelError("unexpected dlib layer types in stem or head")
    if head_pool.window != (0, 0):
        raise ModelError("expected avg_pool_everything before the dlib fc layer")

    blocks: list[ResidualBlock] = []
    i = 4
    while i < len(layers) - 2:
        block, i = _take_block(layers, i)
        blocks.append(block)
    # Each plain block has one tag; each down block a tag, a skip and another tag.
    expected_wrappers = sum(1 if b.down is None else 3 for b in blocks)
    if wrappers != expected_wrappers:
        raise ModelError(f"found {wrappers} tag/skip layers, expected {expected_wrappers}")
    return MetricNet(
        input=input_layer,
        stem_conv=stem_conv,
        stem_affine=stem_affine,
        stem_pool=stem_pool,
        blocks=tuple(blocks),
        head_pool=head_pool,
        fc_weight=fc_weight,
    )
