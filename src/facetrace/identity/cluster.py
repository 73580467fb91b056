"""Grouping face descriptors into identities: constrained average linkage.

Average linkage joins two groups when the *mean* distance over every pair of their
faces is under a threshold. A group grows only when most of its faces agree with the
newcomer, so it does not chain from one person to a lookalike through a single close
pair, the failure of single-linkage methods such as Chinese whispers.

Constraints, all hard:

- faces of one photo never share an identity (``photo``);
- faces pinned to an identity by a person (``pinned``, a merge, split or name) start
  in one group, and groups pinned to different identities never join;
- a face told "not this person" (``rejected``) never joins that pinned identity.

Pairs that are not among a face's ``neighbours`` nearest faces, or are further than
``far``, count as ``far`` apart. That keeps memory linear in the number of faces and
only ever *raises* a mean, so the sparse result is at least as strict as the full one.

:func:`chinese_whispers` and :func:`density_clusters` are the two baselines of
``facetrace eval cluster``: dlib's graph clustering, and the DBSCAN-style density
clustering photo libraries use (Immich: at least 3 faces).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

NO_PIN = -1
"""``pinned`` value of a face no person has placed."""


@dataclass(frozen=True, slots=True)
class Constraints:
    """Per-face constraints for :func:`average_linkage`, arrays of shape ``(n,)``.

    ``photo``: int64 photo id of each face (faces of one photo never share a cluster);
    ``pinned``: int64 identity a person placed the face in, or :data:`NO_PIN`;
    ``rejected``: face index -> identities the face must never join.
    """

    photo: np.ndarray
    pinned: np.ndarray
    rejected: Mapping[int, frozenset[int]] = field(default_factory=dict)

    @classmethod
    def none(cls, n: int) -> Constraints:
        """No constraints: every face its own photo, nothing pinned."""
        return cls(photo=np.arange(n, dtype=np.int64), pinned=np.full(n, NO_PIN, np.int64))


EXACT_GRAPH_MAX = 50_000
"""Up to this many faces the neighbour graph is exact (a quadratic scan: 4.6 s for
50,000 on the 2-core VM); above it, an inverted-file index probes the lists nearest
each face (:func:`_approximate_neighbours`)."""
PROBES = 64
"""Lists of the inverted file searched for each face's neighbours (of ``4 sqrt(n)``):
a face compares itself with about ``16 sqrt(n)`` others, so the graph costs
``n^1.5``, not ``n^2``."""


def knn_graph(
    embeddings: np.ndarray, neighbours: int, far: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k-nearest-neighbour edges closer than ``far``: exact up to
    :data:`EXACT_GRAPH_MAX` faces, approximate above.

    Returns ``(i, j, d)``: int64, int64, float64 arrays with ``i < j`` and each
    undirected pair once; ``d`` is the Euclidean distance.
    """
    import faiss

    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = x.shape[0]
    if n < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float64)
    k = min(neighbours + 1, n)
    if n > EXACT_GRAPH_MAX:
        d2, nn = _approximate_neighbours(x, k)
    else:
        flat = faiss.IndexFlatL2(x.shape[1])
        flat.add(x)
        d2, nn = flat.search(x, k)
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = nn.ravel().astype(np.int64)
    dist = np.sqrt(np.maximum(d2.ravel().astype(np.float64), 0.0))
    keep = (cols >= 0) & (cols != rows) & (dist < far)
    a, b = np.minimum(rows[keep], cols[keep]), np.maximum(rows[keep], cols[keep])
    pairs, first = np.unique(a * n + b, return_index=True)
    return pairs // n, pairs % n, dist[keep][first]


def _approximate_neighbours(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` nearest rows (itself included) from an IVF-Flat index: exact
    distances, found in the :data:`PROBES` lists nearest the face (of ``4 sqrt(n)``)."""
    import faiss

    n, dim = x.shape
    nlist = int(4 * np.sqrt(n))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
    sample = x[np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)]
    index.train(sample)
    index.add(x)
    index.nprobe = min(nlist, PROBES)
    d2 = np.empty((n, k), dtype=np.float32)
    nn = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, 65_536):  # bounded result blocks
        stop = min(n, start + 65_536)
        d2[start:stop], nn[start:stop] = index.search(x[start:stop], k)
    return d2, nn


class _Groups:
    """Clusters under construction, each with the sums that give exact mean squared
    distances: ``mean ||a - b||^2 = Qa/na + Qb/nb - 2 Sa.Sb / (na nb)`` over pairs
    ``a`` in A, ``b`` in B, where ``S`` is a group's vector sum and ``Q`` its sum of
    squared norms."""

    def __init__(self, x: np.ndarray, constraints: Constraints) -> None:
        n = x.shape[0]
        self.members: dict[int, list[int]] = {i: [i] for i in range(n)}
        self.photos: dict[int, set[int]] = {i: {int(constraints.photo[i])} for i in range(n)}
        self.pin: dict[int, int] = {i: int(constraints.pinned[i]) for i in range(n)}
        self.refuse: dict[int, set[int]] = {
            i: set(constraints.rejected.get(i, ())) for i in range(n)
        }
        self.sums: dict[int, np.ndarray] = {i: x[i].copy() for i in range(n)}
        self.squares: dict[int, float] = {i: float(x[i] @ x[i]) for i in range(n)}
        # near[a][b]: cross pairs of a and b closer than the threshold (graph edges)
        self.near: dict[int, dict[int, int]] = {i: {} for i in range(n)}

    def allowed(self, a: int, b: int) -> bool:
        pa, pb = self.pin[a], self.pin[b]
        if pa != NO_PIN and pb != NO_PIN and pa != pb:
            return False
        if (pa != NO_PIN and pa in self.refuse[b]) or (pb != NO_PIN and pb in self.refuse[a]):
            return False
        return self.photos[a].isdisjoint(self.photos[b])

    def distance(self, a: int, b: int) -> float:
        """Root mean squared distance over every pair of faces across ``a`` and ``b``."""
        na, nb = len(self.members[a]), len(self.members[b])
        ms = (
            self.squares[a] / na
            + self.squares[b] / nb
            - 2.0 * float(self.sums[a] @ self.sums[b]) / (na * nb)
        )
        return float(np.sqrt(max(ms, 0.0)))

    def merge(self, a: int, b: int) -> int:
        """Fold ``b`` into ``a``; returns ``a``."""
        self.members[a] += self.members.pop(b)
        self.photos[a] |= self.photos.pop(b)
        pb = self.pin.pop(b)
        if self.pin[a] == NO_PIN:
            self.pin[a] = pb
        self.refuse[a] |= self.refuse.pop(b)
        self.sums[a] = self.sums[a] + self.sums.pop(b)
        self.squares[a] += self.squares.pop(b)
        for c, count in self.near.pop(b).items():
            if c != a:
                total = self.near[a].get(c, 0) + count
                self.near[c].pop(b, None)
                self.near[c][a] = total
                self.near[a][c] = total
        self.near[a].pop(b, None)
        return a

    def agree(self, a: int, b: int, votes: int) -> bool:
        """Whether at least ``votes`` cross pairs (or every pair, if fewer) are close."""
        pairs = len(self.members[a]) * len(self.members[b])
        return self.near[a].get(b, 0) >= min(votes, pairs)


def average_linkage(
    embeddings: np.ndarray,
    threshold: float,
    *,
    constraints: Constraints | None = None,
    neighbours: int = 30,
    votes: int = 2,
) -> np.ndarray:
    """Cluster ``(n, dim)`` descriptors; returns ``(n,)`` int64 labels ``0..c-1``.

    Groups join, closest first, while the root mean squared distance over all their
    cross pairs is under ``threshold`` and no constraint forbids it. Only groups
    joined by an edge of the ``neighbours``-nearest graph are compared.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("embeddings must be (n, dim)")
    n = x.shape[0]
    cons = constraints if constraints is not None else Constraints.none(n)
    if cons.photo.shape != (n,) or cons.pinned.shape != (n,):
        raise ValueError(f"constraints must hold {n} faces")
    groups = _Groups(x, cons)
    # Faces pinned to one identity start together (a person put them there).
    first: dict[int, int] = {}
    for i in range(n):
        pin = int(cons.pinned[i])
        if pin != NO_PIN:
            if pin in first:
                groups.merge(first[pin], i)
            else:
                first[pin] = i
    owner = {m: g for g, ms in groups.members.items() for m in ms}
    ei, ej, _ = knn_graph(x, neighbours, threshold)
    for i, j in zip(ei.tolist(), ej.tolist(), strict=True):
        a, b = owner[i], owner[j]
        if a != b:
            count = groups.near[a].get(b, 0) + 1
            groups.near[a][b] = count
            groups.near[b][a] = count
    heap = [(groups.distance(a, b), a, b) for a, near in groups.near.items() for b in near if a < b]
    heap = [h for h in heap if h[0] < threshold]
    heapq.heapify(heap)
    size = {g: len(ms) for g, ms in groups.members.items()}
    while heap:
        _, a, b = heapq.heappop(heap)
        if a not in groups.members or b not in groups.members:
            continue
        if size[a] != len(groups.members[a]) or size[b] != len(groups.members[b]):
            continue  # stale: one side grew since this entry was pushed
        if not groups.allowed(a, b) or not groups.agree(a, b, votes):
            continue
        keep = groups.merge(a, b)
        size.pop(b)
        size[keep] = len(groups.members[keep])
        for c in groups.near[keep]:
            d = groups.distance(keep, c)
            if d < threshold:
                heapq.heappush(heap, (d, min(keep, c), max(keep, c)))
    return _labels(n, groups.members.values())


def choose_identity(
    x: np.ndarray,
    candidates: Mapping[int, tuple[np.ndarray, int]],
    threshold: float,
    votes: int,
) -> int | None:
    """The identity a new ``(dim,)`` face joins, or None to start one.

    ``candidates``: identity -> ``((m, dim) its faces, how many of them are among the
    face's nearest neighbours and closer than threshold)``; identities the face may not
    join (same photo, rejected) are left out by the caller. The face joins the identity
    with the smallest root mean squared distance to its faces, if that is under
    ``threshold`` and at least ``min(votes, m)`` of its faces are close.
    """
    q = np.asarray(x, dtype=np.float64)
    best: tuple[float, int] | None = None
    for identity, (members, close) in candidates.items():
        m = np.asarray(members, dtype=np.float64)
        if m.shape[0] == 0 or close < min(votes, m.shape[0]):
            continue
        rms = float(np.sqrt(((m - q[None, :]) ** 2).sum(1).mean()))
        if rms < threshold and (best is None or rms < best[0]):
            best = (rms, identity)
    return best[1] if best else None


def choose_merge(
    group: np.ndarray, others: Mapping[int, np.ndarray], threshold: float, votes: int
) -> int | None:
    """The identity that the ``(m, dim)`` faces of a grown identity should now merge
    with, or None: the smallest root mean squared distance over all cross pairs, under
    ``threshold``, with at least ``min(votes, pairs)`` cross pairs closer than it.

    ``others``: identity -> its ``(k, dim)`` faces; identities the group may not join
    (shared photo, rejection, a second pin) are left out by the caller. This is the
    step that lets one face bridge two parts of a person that arrived apart, as full
    average linkage would join them.
    """
    a = np.asarray(group, dtype=np.float64)
    best: tuple[float, int] | None = None
    for identity, vecs in others.items():
        b = np.asarray(vecs, dtype=np.float64)
        if a.shape[0] == 0 or b.shape[0] == 0:
            continue
        d2 = (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None, :]
        d2 = np.maximum(d2, 0.0)
        close = int((d2 < threshold * threshold).sum())
        rms = float(np.sqrt(d2.mean()))
        if rms < threshold and close >= min(votes, d2.size) and (best is None or rms < best[0]):
            best = (rms, identity)
    return best[1] if best else None


def incremental(
    embeddings: np.ndarray, threshold: float, *, votes: int = 2, neighbours: int = 30
) -> np.ndarray:
    """Faces placed one at a time in order, as ingest places them: each joins an
    identity (:func:`choose_identity` over the identities of its ``neighbours`` nearest
    earlier faces) or starts one, and the identity it is in then merges with another
    of those identities while :func:`choose_merge` finds one. ``(n,)`` int64 labels.
    For evaluation; the engine does the same against its index."""
    import faiss

    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = x.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    members: dict[int, list[int]] = {}
    index = faiss.IndexFlatL2(x.shape[1])
    for i in range(n):
        close: Counter[int] = Counter()
        if i:
            d2, nn = index.search(x[i : i + 1], min(neighbours, i))
            close = Counter(
                int(labels[j])
                for j, dd in zip(nn[0], d2[0], strict=True)
                if j >= 0 and np.sqrt(max(float(dd), 0.0)) < threshold
            )
        candidates = {c: (x[members[c]], k) for c, k in close.items()}
        chosen = choose_identity(x[i], candidates, threshold, votes)
        if chosen is None:
            chosen = i  # a new identity takes the id of its first face
            members[chosen] = []
        members[chosen].append(i)
        labels[i] = chosen
        index.add(x[i : i + 1])
        others = set(close) - {chosen}
        while others:
            other = choose_merge(
                x[members[chosen]], {c: x[members[c]] for c in others}, threshold, votes
            )
            if other is None:
                break
            members[chosen] += members.pop(other)
            labels[labels == other] = chosen
            others.discard(other)
    return labels


def _labels(n: int, clusters: Iterable[list[int]]) -> np.ndarray:
    labels = np.full(n, -1, dtype=np.int64)
    ordered = sorted(clusters, key=lambda ms: min(ms))
    for label, members in enumerate(ordered):
        labels[members] = label
    return labels


def chinese_whispers(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """dlib's Chinese whispers over edges shorter than ``threshold``; ``(n,)`` int64 labels."""
    import dlib

    vectors = [dlib.vector(row.astype(np.float64).tolist()) for row in np.asarray(embeddings)]
    return np.asarray(dlib.chinese_whispers_clustering(vectors, float(threshold)), np.int64)


def density_clusters(embeddings: np.ndarray, eps: float, min_faces: int = 3) -> np.ndarray:
    """DBSCAN: core faces have ``min_faces`` faces (themselves included) within ``eps``.

    Returns ``(n,)`` int64 labels; noise faces each get a label of their own (an
    unclustered face is its own identity, as a photo library shows it).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    n = x.shape[0]
    sq = (x**2).sum(1)
    labels = np.full(n, -1, dtype=np.int64)
    neighbours = []
    for start in range(0, n, 1024):
        d2 = sq[start : start + 1024, None] - 2 * x[start : start + 1024] @ x.T + sq[None, :]
        neighbours += [np.flatnonzero(row < eps * eps) for row in d2]
    core = np.array([len(nb) >= min_faces for nb in neighbours], dtype=bool)
    label = 0
    for seed in range(n):
        if labels[seed] != -1 or not core[seed]:
            continue
        labels[seed] = label
        stack = [seed]
        while stack:
            p = stack.pop()
            if not core[p]:
                continue
            for q in neighbours[p]:
                if labels[q] == -1:
                    labels[q] = label
                    stack.append(int(q))
        label += 1
    noise = np.flatnonzero(labels == -1)
    labels[noise] = label + np.arange(noise.size)
    return labels
