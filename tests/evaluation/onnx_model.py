"""A tiny ArcFace-shaped ONNX model the tests build themselves: a fixed random projection."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def build_projection_model(path: Path, dim: int = 64, seed: int = 0) -> Path:
    """Write an ONNX model mapping ``(n, 3, 112, 112)`` float32 to ``(n, dim)`` by a fixed
    random linear projection of the flattened input (seeded: same seed, same file)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = (rng.standard_normal((3 * 112 * 112, dim)) / np.sqrt(3 * 112 * 112)).astype(
        np.float32
    )
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input.1"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["embedding"]),
        ],
        "projection",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["n", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", dim])],
        initializer=[numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path
