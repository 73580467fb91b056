"""The neighbour graph that ``people recluster`` links faces over: exact up to
``EXACT_GRAPH_MAX`` faces, from an inverted file above it (sub-quadratic), which must
find the same close pairs and give the same people."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from facetrace.evaluation.facelike import FaceLikeGenerator, GalleryShape
from facetrace.identity import cluster

N = 20_000
THRESHOLD = 0.478  # the default grouping distance (FMR 1e-4)


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    gen = FaceLikeGenerator(128, 3, shape=GalleryShape.COLLECTED, model="mixture")
    return gen.fill(np.empty((N, 128), np.float32))


def _graph(x: np.ndarray, exact: bool, monkeypatch: pytest.MonkeyPatch) -> set[tuple[int, int]]:
    monkeypatch.setattr(cluster, "EXACT_GRAPH_MAX", N if exact else N // 4)
    i, j, _ = cluster.knn_graph(x, 30, THRESHOLD)
    return set(zip(i.tolist(), j.tolist(), strict=True))


def test_the_inverted_file_finds_the_close_pairs_the_exact_scan_does(
    faces: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    exact = _graph(faces, True, monkeypatch)
    approximate = _graph(faces, False, monkeypatch)
    assert len(exact) > 50_000
    assert len(exact & approximate) / len(exact) >= 0.98


def test_people_are_the_same_over_either_graph(
    faces: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "EXACT_GRAPH_MAX", N)
    exact = cluster.average_linkage(faces, THRESHOLD)
    monkeypatch.setattr(cluster, "EXACT_GRAPH_MAX", N // 4)
    approximate = cluster.average_linkage(faces, THRESHOLD)
    # Faces in the same place as the exact clustering's majority for their cluster.
    agree = 0
    for label in np.unique(exact):
        members = approximate[exact == label]
        agree += Counter(members.tolist()).most_common(1)[0][1]
    assert agree / N >= 0.99
    assert abs(len(np.unique(approximate)) - len(np.unique(exact))) <= 0.01 * N
