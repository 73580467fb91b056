"""Calibration tables: construction, interpolation, lookup, and the shipped dlib table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facetrace import Settings
from facetrace.config import FmrScope
from facetrace.errors import ConfigError
from facetrace.evaluation.calibration import (
    Calibration,
    build_calibration,
    decision_threshold,
    impostor_genuine_distances,
    load_calibration,
    user_table_path,
)


def test_pair_distances_split_by_identity() -> None:
    emb = np.array([[0, 0], [3, 4], [0, 1], [6, 8]], dtype=np.float32)
    imp, gen = impostor_genuine_distances(emb, ["a", "b", "a", "b"], block=3)
    assert sorted(gen.tolist()) == pytest.approx([1.0, 5.0])
    assert sorted(imp.tolist()) == pytest.approx(
        sorted([5.0, 10.0, np.hypot(3, 3), np.hypot(6, 7)])
    )


def test_fmr_reads_back_the_impostor_distribution() -> None:
    rng = np.random.default_rng(1)
    imp = rng.uniform(0.0, 1.0, 100_000)
    table = build_calibration("m", imp, rng.uniform(0.0, 0.5, 1000))
    for d in (0.001, 0.01, 0.1, 0.5):
        assert table.false_match_rate(d) == pytest.approx(d, rel=0.15)
    assert table.threshold_at(1e-2) == pytest.approx(0.01, rel=0.15)
    assert table.false_match_rate(-1.0) == pytest.approx(1e-5)  # floor: 1 / n
    assert table.false_match_rate(5.0) == 1.0
    assert table.false_non_match_rate(0.25) == pytest.approx(0.5, abs=0.06)
    with pytest.raises(ConfigError, match="below what"):
        table.threshold_at(1e-7)


def test_home_table_wins_and_roundtrips(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    table = build_calibration("onnx:abc", rng.uniform(0, 2, 5000), rng.uniform(0, 1, 50))
    table.save(user_table_path(tmp_path, "onnx:abc"))
    loaded = load_calibration("onnx:abc", tmp_path)
    assert isinstance(loaded, Calibration)
    assert loaded.false_match_rate(0.3) == pytest.approx(table.false_match_rate(0.3), rel=1e-4)
    assert load_calibration("onnx:other", tmp_path) is None


def test_threshold_is_set_at_the_configured_fmr_unless_overridden(tmp_path: Path) -> None:
    table = load_calibration("dlib-resnet-v1")
    assert table is not None and table.impostor_pairs > 1_000_000
    s = Settings(home=tmp_path, match_fmr=1e-3, match_fmr_scope=FmrScope.OVERALL)
    t = decision_threshold(s, table)
    assert table.false_match_rate(t) == pytest.approx(1e-3, rel=0.05)
    assert 0.4 < t < 0.6  # dlib's descriptor: 0.6 is its documented (looser) threshold
    # Default scope: the shipped worst-group curve sets a stricter threshold.
    worst = decision_threshold(Settings(home=tmp_path, match_fmr=1e-3), table)
    assert table.worst_group is not None
    assert worst < t
    assert table.worst_group.false_match_rate(worst) == pytest.approx(1e-3, rel=0.05)
    # Below 10 false matches in the curve's smallest group the curve claims nothing.
    with pytest.raises(ConfigError, match="worst-group curve resolves"):
        decision_threshold(Settings(home=tmp_path, match_fmr=1e-4), table)
    assert decision_threshold(Settings(home=tmp_path, match_threshold=0.55), table) == 0.55
    with pytest.raises(ConfigError, match="no calibration table"):
        decision_threshold(s, None)
