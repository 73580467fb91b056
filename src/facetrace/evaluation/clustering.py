"""Clustering quality: BCubed and pairwise precision and recall against true identities.

BCubed (Bagga and Baldwin, 1998; Amigó et al., 2009) scores every face: its
precision is the share of its cluster that is truly its person, its recall the
share of its person that is in its cluster; both are averaged over faces. Pairwise
precision is the share of same-cluster pairs that are one person, pairwise recall
the share of same-person pairs put in one cluster. Joining two people costs pairwise
precision in proportion to the pairs it creates, which is the error that matters
most for a gallery: it shows one person's photos under another's name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class ClusterScores:
    """Scores of one clustering of ``faces`` faces of ``identities`` true people."""

    method: str
    faces: int
    identities: int
    clusters: int
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    pairwise_precision: float
    pairwise_recall: float
    singletons: int
    """Clusters of one face."""

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _codes(values: np.ndarray) -> np.ndarray:
    return np.unique(np.asarray(values), return_inverse=True)[1].astype(np.int64)


def score_clusters(method: str, truth: np.ndarray, labels: np.ndarray) -> ClusterScores:
    """Score ``(n,)`` cluster ``labels`` against ``(n,)`` true identities (any hashables)."""
    t, c = _codes(truth), _codes(labels)
    if t.shape != c.shape:
        raise ValueError("truth and labels must have the same length")
    n = t.size
    if n == 0:
        raise ValueError("nothing to score")
    joint = np.zeros((int(c.max()) + 1, int(t.max()) + 1), dtype=np.int64)
    np.add.at(joint, (c, t), 1)
    cluster_size = joint.sum(1)
    truth_size = joint.sum(0)
    overlap = joint[c, t].astype(np.float64)
    precision = float((overlap / cluster_size[c]).mean())
    recall = float((overlap / truth_size[t]).mean())
    f1 = 2 * precision * recall / (precision + recall)
    same_both = float((joint * (joint - 1)).sum() / 2)
    same_cluster = float((cluster_size * (cluster_size - 1)).sum() / 2)
    same_truth = float((truth_size * (truth_size - 1)).sum() / 2)
    return ClusterScores(
        method=method,
        faces=n,
        identities=int(truth_size.size),
        clusters=int(cluster_size.size),
        bcubed_precision=precision,
        bcubed_recall=recall,
        bcubed_f1=f1,
        pairwise_precision=same_both / same_cluster if same_cluster else 1.0,
        pairwise_recall=same_both / same_truth if same_truth else 1.0,
        singletons=int((cluster_size == 1).sum()),
    )


def evaluate_clustering(
    embeddings: np.ndarray,
    truth: np.ndarray,
    *,
    threshold: float,
    votes: int,
    baseline_threshold: float = 0.5,
) -> list[ClusterScores]:
    """facetrace's grouping (full average linkage, and incremental as ingest does it)
    and the two baselines on the same ``(n, dim)`` descriptors, scored against ``(n,)``
    true identities. Baselines: dlib's Chinese whispers at ``baseline_threshold`` (the
    0.5 of dlib's face-clustering example) and at ``threshold``; DBSCAN with at least 3
    faces (as Immich) at both distances."""
    from facetrace.identity.cluster import (
        average_linkage,
        chinese_whispers,
        density_clusters,
        incremental,
    )

    runs = [
        ("facetrace", average_linkage(embeddings, threshold, votes=votes)),
        ("facetrace-incremental", incremental(embeddings, threshold, votes=votes)),
    ]
    for t in sorted({baseline_threshold, threshold}):
        runs.append((f"chinese-whispers@{t:.3f}", chinese_whispers(embeddings, t)))
        runs.append((f"dbscan-min3@{t:.3f}", density_clusters(embeddings, t, 3)))
    return [score_clusters(name, truth, labels) for name, labels in runs]
