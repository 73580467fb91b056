"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facetrace.evaluation.metrics import (
    best_threshold,
    kfold_accuracy,
    roc_auc,
    tar_at_far,
    threshold_at_far,
    wilson_interval,
)


def test_auc_is_the_probability_a_genuine_pair_is_closer() -> None:
    d = [0.1, 0.4, 0.3, 0.5, 0.2, 0.6]
    same = [True, True, True, False, False, False]
    # genuine {0.1,0.4,0.3} vs impostor {0.5,0.2,0.6}: 7 of 9 orderings right
    assert roc_auc(d, same) == pytest.approx(7 / 9)
    assert roc_auc([0.1, 0.1], [True, False]) == pytest.approx(0.5)


def test_failed_comparisons_rank_last() -> None:
    assert roc_auc([math.inf, 0.5], [True, False]) == 0.0


def test_threshold_at_far_counts_impostors_strictly_below() -> None:
    imp = np.arange(1, 1001) / 1000.0  # 0.001 .. 1.0
    assert threshold_at_far(imp, 1e-2) == pytest.approx(0.011)  # 10 impostors below
    assert threshold_at_far(imp, 1e-4) == pytest.approx(0.001)  # unresolved: smallest
    tar, t = tar_at_far(np.r_[imp, [0.005, 0.02]], [False] * 1000 + [True, True], 1e-2)
    assert t == pytest.approx(0.011) and tar == 0.5


def test_kfold_threshold_comes_from_the_other_folds() -> None:
    d = np.array([0.2, 0.3, 0.7, 0.8, 0.25, 0.35, 0.75, 0.9])
    same = np.array([True, True, False, False] * 2)
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    acc = kfold_accuracy(d, same, folds)
    assert acc.folds == (1.0, 1.0) and acc.std == 0.0
    assert 0.35 < best_threshold(d, same) < 0.7


def test_wilson_interval_matches_the_textbook_value() -> None:
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(0, 100)[0] == 0.0
