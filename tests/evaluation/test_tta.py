"""Flip averaging: the descriptor of a chip and of its mirror image become one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facetrace.vision.tta import AugmentedEmbedder
from tests.evaluation.onnx_model import build_projection_model

pytest.importorskip("onnxruntime")


def test_flip_averaging_is_mirror_invariant_and_keeps_unit_length(tmp_path: Path) -> None:
    from facetrace.vision.onnx_embedder import OnnxEmbedder

    inner = OnnxEmbedder(build_projection_model(tmp_path / "m.onnx"))
    chips = np.random.default_rng(0).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    mirrored = np.ascontiguousarray(chips[:, :, ::-1])
    plain = AugmentedEmbedder(inner, flip=False)
    flip = AugmentedEmbedder(inner, flip=True)
    assert flip.model_id == inner.model_id and flip.dim == inner.dim == 64
    assert not np.allclose(plain.embed(chips), plain.embed(mirrored), atol=1e-3)
    a, b = flip.embed(chips), flip.embed(mirrored)
    assert np.allclose(a, b, atol=1e-5)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    expected = inner.embed(chips) + inner.embed(mirrored)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(a, expected, atol=1e-5)


def test_jitter_is_deterministic_and_small(tmp_path: Path) -> None:
    from facetrace.vision.onnx_embedder import OnnxEmbedder
    from facetrace.vision.tta import jittered

    # A smooth chip: a jittered copy is close to it, pixel for pixel, once unmirrored.
    y, x = np.mgrid[0:112, 0:112]
    chip = np.stack([x * 2, y * 2, (x + y)], axis=-1).astype(np.uint8)
    copies = [jittered(chip, i) for i in range(6)]
    assert all(np.array_equal(c, jittered(chip, i)) for i, c in enumerate(copies))
    for c in copies:
        diff = min(
            np.abs(c.astype(int) - chip).mean(), np.abs(c[:, ::-1].astype(int) - chip).mean()
        )
        assert 0 < diff < 8
    inner = OnnxEmbedder(build_projection_model(tmp_path / "m.onnx"))
    jit = AugmentedEmbedder(inner, flip=True, jitter=4)
    batch = np.stack([chip, chip[::-1]])
    assert np.array_equal(jit.embed(batch), jit.embed(batch))
