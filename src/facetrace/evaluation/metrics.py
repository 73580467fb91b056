"""Verification and identification metrics on descriptor distances.

Conventions: a *distance* is smaller for more alike faces; ``same`` is a bool
array, True for a genuine (same-person) comparison. A failed comparison (no
face in one image) has distance ``+inf``: it is never accepted.

- FAR / FMR: fraction of impostor comparisons with distance ``< t``;
- TAR = 1 - FNMR: fraction of genuine comparisons with distance ``< t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


def _check(distances: npt.ArrayLike, same: npt.ArrayLike) -> tuple[Floats, Bools]:
    d = np.asarray(distances, dtype=np.float64)
    s = np.asarray(same, dtype=bool)
    if d.ndim != 1 or d.shape != s.shape:
        raise ValueError(f"distances and same must be equal-length 1-D, got {d.shape}, {s.shape}")
    if np.isnan(d).any():
        raise ValueError("distances contain NaN")
    return d, s


def roc_auc(distances: npt.ArrayLike, same: npt.ArrayLike) -> float:
    """Area under the ROC curve: P(genuine distance < impostor distance), ties count 1/2."""
    d, s = _check(distances, same)
    n_gen, n_imp = int(s.sum()), int((~s).sum())
    if not n_gen or not n_imp:
        raise ValueError("ROC AUC needs genuine and impostor comparisons")
    # Mann-Whitney U on -distance, with average ranks for ties (inf ties included).
    order = np.argsort(-d, kind="mergesort")
    ranks = np.empty(d.size, dtype=np.float64)
    sorted_d = -d[order]
    _, first, counts = np.unique(sorted_d, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[s].sum() - n_gen * (n_gen + 1) / 2.0
    return float(u / (n_gen * n_imp))


def threshold_at_far(impostor: npt.ArrayLike, far: float) -> float:
    """The largest threshold ``t`` with FAR(t) = #(impostor < t) / n <= ``far``.

    That is the ``k``-th smallest impostor distance, ``k = floor(far * n) + 1``
    (``+inf`` when ``far * n >= n``). Below ``far = 1 / n`` it is the smallest
    impostor distance: FAR is then 0 on this data, not ``far``.
    """
    return threshold_in_sorted(np.sort(np.asarray(impostor, dtype=np.float64)), far)


def threshold_in_sorted(impostor: npt.NDArray[Any], far: float) -> float:
    """:func:`threshold_at_far` on distances already sorted ascending (no copy, no sort)."""
    k = math.floor(far * impostor.size + 1e-9) + 1
    if k > impostor.size:
        return math.inf
    return float(impostor[k - 1])


def tar_at_far(distances: npt.ArrayLike, same: npt.ArrayLike, far: float) -> tuple[float, float]:
    """``(TAR, threshold)`` at the threshold :func:`threshold_at_far` picks."""
    d, s = _check(distances, same)
    t = threshold_at_far(d[~s], far)
    return float(np.mean(d[s] < t)), t


def best_threshold(distances: Floats, same: Bools) -> float:
    """The threshold maximising accuracy of ``distance < t`` (midpoint between neighbours)."""
    vals = np.unique(distances[np.isfinite(distances)])
    if vals.size == 0:
        return 0.0
    cands = np.concatenate(([vals[0] - 1e-6], (vals[:-1] + vals[1:]) / 2.0, [vals[-1] + 1e-6]))
    gen = np.sort(distances[same])
    imp = np.sort(distances[~same])
    tp = np.searchsorted(gen, cands, side="left")  # genuine accepted
    fp = np.searchsorted(imp, cands, side="left")  # impostors accepted
    correct = tp + (imp.size - fp)
    return float(cands[int(np.argmax(correct))])


@dataclass(frozen=True, slots=True)
class FoldAccuracy:
    """k-fold accuracy: mean and sample standard deviation over folds, and each fold's."""

    mean: float
    std: float
    folds: tuple[float, ...]
    thresholds: tuple[float, ...]

    @property
    def standard_error(self) -> float:
        return self.std / math.sqrt(len(self.folds))


def kfold_accuracy(
    distances: npt.ArrayLike, same: npt.ArrayLike, folds: npt.ArrayLike
) -> FoldAccuracy:
    """LFW protocol: for each fold, the threshold is chosen on the other folds.

    ``folds``: ``(n,)`` int fold number of each comparison.
    """
    d, s = _check(distances, same)
    f = np.asarray(folds)
    accs, ts = [], []
    for k in np.unique(f):
        test = f == k
        t = best_threshold(d[~test], s[~test])
        accs.append(float(np.mean((d[test] < t) == s[test])))
        ts.append(t)
    arr = np.asarray(accs)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return FoldAccuracy(float(arr.mean()), std, tuple(accs), tuple(ts))


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% with the default ``z``)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def roc_points(distances: npt.ArrayLike, same: npt.ArrayLike) -> tuple[Floats, Floats]:
    """``(far, tar)`` at every distinct threshold, FAR ascending."""
    d, s = _check(distances, same)
    vals = np.unique(d[np.isfinite(d)])
    cands = np.concatenate((vals, [np.inf]))
    gen = np.sort(d[s])
    imp = np.sort(d[~s])
    tar = np.searchsorted(gen, cands, side="right") / max(gen.size, 1)
    far = np.searchsorted(imp, cands, side="right") / max(imp.size, 1)
    return far.astype(np.float64), tar.astype(np.float64)
