"""Synthetic face-like descriptors for index benchmarks, and how to check they are face-like.

Real galleries cannot be shipped, and uniform or single-Gaussian noise is a poor stand-in:
approximate indexes live or die by the *local* structure of the data. The generator draws
dlib-like descriptors from a model fitted to real ones (``facetrace/data/
dlib_descriptor_stats.npz``, made by ``scripts/make_face_stats.py`` from lfw-dev):

- ``mixture`` (default): each identity's centre comes from one of ``K`` Gaussian
  components (k-means clusters of real identity centres, each with its own covariance,
  shrunk towards their pooled covariance); each photo adds within-identity noise ``W z``.
- ``gaussian``: one Gaussian for all centres (``mean + B z``), the earlier model. It has
  the right global covariance but a higher local intrinsic dimensionality than real
  faces, so it makes nearest-neighbour search harder than real galleries do.

:func:`fidelity` measures what matters to an index on a set of descriptors: local
intrinsic dimensionality, relative contrast and the recall of a deliberately weak HNSW
graph. The stats file keeps those figures for held-out real faces and the identity sizes
they had, so a test can check that the generator still reproduces them.

A :class:`GalleryShape` says how many photos each person has and who the probes are:
``collected`` (default) is a gallery gathered from the web, most people once and a few
many times, with half the probes strangers; ``enrolled`` is the earlier shape, several
photos of everyone and most probes enrolled.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from facetrace.index.base import FloatArray, IdArray
from facetrace.index.structures import (
    FaissTuning,
    StructureKind,
    import_faiss,
    new_structure,
    search_params,
)

STATS_FILE = Path(__file__).resolve().parent.parent / "data" / "dlib_descriptor_stats.npz"
CHUNK = 65_536  # faces per generated chunk; chunks are independent and reproducible
FIDELITY_EF = (10, 16, 24, 40)  # efSearch values of the weak-HNSW recall curve

Model = Literal["mixture", "gaussian"]
MODEL_KEYS = ("mean", "within_factor", "between_factor", "mix_weights", "mix_means", "mix_factors")

# Photos per person in LFW (5,749 people, 13,233 photos): 4,069 people have one photo,
# 1,680 two or more, 158 ten or more, 62 twenty or more, 7 seventy or more, and one has 530.
# A zeta law truncated at 530, P(k) ~ k^-2.34, has LFW's share of one-photo people (70.8%)
# and gives 1,680 / 149 / 57 / 10 people at those tails, 2.27 photos per person (LFW 2.30).
COLLECTED_EXPONENT = 2.34
COLLECTED_MAX_PHOTOS = 530


class GalleryShape(StrEnum):
    """How many photos each generated person has, and who the probes are.

    ``collected``: a zeta law fitted to LFW's photos per person (most people once, a few
    hundreds of times); half the probes are strangers, the other half new photos of
    enrolled people drawn uniformly by person. ``enrolled``: a geometric law with a mean
    of 4 photos; 20% strangers, the rest new photos of the people behind random gallery
    faces (the bench's sampling before 2026-12).
    """

    COLLECTED = "collected"
    ENROLLED = "enrolled"

    @property
    def stranger_fraction(self) -> float:
        return 0.5 if self is GalleryShape.COLLECTED else 0.2

    def photos_per_person(self, rng: Any, n: int) -> npt.NDArray[np.int64]:
        """``(n,)`` photo counts, each at least 1."""
        counts: npt.NDArray[np.int64]
        if self is GalleryShape.ENROLLED:
            counts = rng.geometric(1.0 / 4.0, size=n).astype(np.int64)
        else:
            k = np.arange(1, COLLECTED_MAX_PHOTOS + 1, dtype=np.float64)
            cdf = np.cumsum(k**-COLLECTED_EXPONENT)
            counts = np.searchsorted(cdf / cdf[-1], rng.random(n), side="right") + 1
        return counts


class FaceLikeGenerator:
    """Deterministic face-like descriptors: identities with within-identity spread.

    ``gallery(n)`` yields ``(ids, vectors)`` chunks (ids ``0..n-1``); the same seed gives
    the same data whatever the chunking of the caller. ``shape`` sets the photos per
    identity and the probes (:class:`GalleryShape`). ``stats`` is a model as
    :func:`fit_mixture` returns it (default: the one in :data:`STATS_FILE`).
    """

    def __init__(
        self,
        dim: int = 128,
        seed: int = 0,
        shape: GalleryShape = GalleryShape.COLLECTED,
        model: Model = "mixture",
        stats: Mapping[str, npt.NDArray[Any]] | None = None,
    ):
        if stats is None:
            with np.load(STATS_FILE) as saved:
                stats = {key: saved[key] for key in MODEL_KEYS}
        mean = stats["mean"].astype(np.float64)
        within = stats["within_factor"].astype(np.float64)
        if model == "mixture":
            weights = stats["mix_weights"].astype(np.float64)
            means = stats["mix_means"].astype(np.float64)
            factors = stats["mix_factors"].astype(np.float64)
        elif model == "gaussian":
            weights = np.ones(1)
            means = mean[None, :]
            factors = stats["between_factor"].astype(np.float64)[None]
        else:
            raise ValueError(f"unknown face model {model!r}: mixture or gaussian")
        base = mean.shape[0]
        if dim != base:
            # Same statistics seen through a random orthonormal map (rank <= 128).
            rng = np.random.default_rng(seed + 7919)
            q, _ = np.linalg.qr(rng.normal(size=(max(dim, base), base)))
            proj = q[:dim] if dim <= base else q
            means, within = means @ proj.T, proj @ within
            factors = np.einsum("dj,kjl->kdl", proj, factors)
        self.dim = dim
        self.model = model
        self._base = base
        self._weights = weights / weights.sum()
        self._means = means
        self._factors_t = np.ascontiguousarray(factors.transpose(0, 2, 1))  # z @ F.T
        self._within_t = within.T.copy()
        self._seed = seed
        self.shape = shape

    def centres(self, rng: Any, n: int) -> npt.NDArray[np.float64]:
        """``(n, dim)`` identity centres drawn with ``rng``."""
        comp = rng.choice(self._weights.size, size=n, p=self._weights)
        z = rng.normal(size=(n, self._base))
        out = np.empty((n, self.dim))
        for j in range(self._weights.size):
            sel = comp == j
            out[sel] = self._means[j] + z[sel] @ self._factors_t[j]
        return out

    def photos(self, rng: Any, centres: npt.NDArray[np.float64]) -> FloatArray:
        """One new photo (descriptor) of each identity centre, float32."""
        noise = rng.normal(size=(centres.shape[0], self._within_t.shape[0])) @ self._within_t
        out: FloatArray = (centres + noise).astype(np.float32)
        return out

    def _chunk(self, c: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], Any]:
        """Identity centres and face labels of chunk ``c``, and its generator."""
        rng = np.random.default_rng([self._seed, c])
        sizes = self.shape.photos_per_person(rng, CHUNK)
        labels = np.repeat(np.arange(sizes.size), sizes)[:CHUNK]
        centres = self.centres(rng, int(labels[-1]) + 1)
        return centres, labels.astype(np.int64), rng

    def gallery(self, n: int, batch: int = CHUNK) -> Iterator[tuple[IdArray, FloatArray]]:
        """Yield ``(ids, vectors)``: ``(m,)`` int64 and ``(m, dim)`` float32, ids ``0..n-1``."""
        for c in range(math.ceil(n / CHUNK)):
            centres, labels, rng = self._chunk(c)
            m = min(CHUNK, n - c * CHUNK)
            vecs = self.photos(rng, centres[labels])[:m]
            ids = np.arange(c * CHUNK, c * CHUNK + m, dtype=np.int64)
            for s in range(0, m, batch):
                yield ids[s : s + batch], vecs[s : s + batch]

    def fill(self, out: FloatArray) -> FloatArray:
        """Write the first ``len(out)`` gallery vectors into ``out`` (an array or memmap)."""
        for ids, vecs in self.gallery(out.shape[0]):
            out[ids[0] : ids[-1] + 1] = vecs
        return out

    def queries(self, m: int, n: int, stranger_fraction: float | None = None) -> FloatArray:
        """``(m, dim)`` float32 probes: new photos of strangers, then of gallery people.

        ``stranger_fraction`` defaults to the shape's; enrolled people are drawn as the
        shape says (:class:`GalleryShape`) among the first ``n`` gallery faces.
        """
        rng = np.random.default_rng([self._seed, 10**9 + 1])
        out = np.empty((m, self.dim), dtype=np.float32)
        if stranger_fraction is None:
            stranger_fraction = self.shape.stranger_fraction
        n_imp = round(m * stranger_fraction)
        out[:n_imp] = self.photos(rng, self.centres(rng, n_imp))
        if self.shape is GalleryShape.ENROLLED:
            faces = np.sort(rng.choice(n, size=m - n_imp, replace=False))
        else:
            faces = self._faces_of_random_people(rng, m - n_imp, n)
        for c in np.unique(faces // CHUNK):
            centres, labels, _ = self._chunk(int(c))
            sel = np.flatnonzero(faces // CHUNK == c)
            out[n_imp + sel] = self.photos(rng, centres[labels[faces[sel] - c * CHUNK]])
        return out

    def people(self, n: int) -> npt.NDArray[np.int64]:
        """``(n,)`` int64: the person behind each of the first ``n`` gallery faces (a
        person's faces are consecutive; ids are unique across chunks, not dense)."""
        out = np.empty(n, dtype=np.int64)
        for c in range(math.ceil(n / CHUNK)):
            m = min(CHUNK, n - c * CHUNK)
            out[c * CHUNK : c * CHUNK + m] = c * CHUNK + self._chunk(c)[1][:m]
        return out

    def _faces_of_random_people(self, rng: Any, m: int, n: int) -> npt.NDArray[np.int64]:
        """``(m,)`` sorted gallery rows, one of each of ``m`` people drawn uniformly by person."""
        people = self.people(n)
        firsts = np.flatnonzero(np.r_[True, people[1:] != people[:-1]])
        return np.sort(firsts[rng.choice(firsts.size, size=m, replace=m > firsts.size)])

    def like(self, sizes: npt.NDArray[np.int64], seed: int = 0) -> FloatArray:
        """Descriptors of ``len(sizes)`` new identities with ``sizes[i]`` photos each."""
        rng = np.random.default_rng([self._seed, seed, 2**31])
        labels = np.repeat(np.arange(sizes.size), sizes)
        return self.photos(rng, self.centres(rng, sizes.size)[labels])


def recall_at_k(truth: IdArray, found: IdArray) -> float:
    """Mean fraction of each row of ``truth`` (exact top-k ids) present in ``found``."""
    return float(np.mean([np.isin(t, f).mean() for t, f in zip(truth, found, strict=True)]))


def fidelity(x: FloatArray, splits: int = 3) -> dict[str, float]:
    """How hard ``(n, d)`` descriptors are for nearest-neighbour search (n in the thousands).

    ``lid20``: maximum-likelihood local intrinsic dimensionality over 20 neighbours
    (Levina & Bickel); ``contrast``: mean pairwise distance over nearest-neighbour
    distance; ``hnsw_ef<E>``: recall@10 of an HNSW graph with M=4, efConstruction=16
    at efSearch E, for 300 held-out queries, averaged over ``splits`` random splits
    (one thread, so the graph is reproducible).
    """
    faiss = import_faiss()
    x = np.ascontiguousarray(x, dtype=np.float32)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        d2, _ = faiss.knn(x, x, 21)
        dist = np.sqrt(np.maximum(d2[:, 1:], 1e-12))
        lid = float(np.mean(-1.0 / np.mean(np.log(dist[:, :-1] / dist[:, -1:]), axis=1)))
        rng = np.random.default_rng(0)
        i, j = rng.integers(0, len(x), 20_000), rng.integers(0, len(x), 20_000)
        spread = float(np.linalg.norm(x[i] - x[j], axis=1).mean())
        contrast = float(np.mean(spread / np.maximum(dist[:, 0], 1e-9)))
        out = {"lid20": lid, "contrast": contrast}
        recall = np.zeros(len(FIDELITY_EF))
        for s in range(splits):
            perm = np.random.default_rng(s).permutation(len(x))
            queries, gallery = x[perm[:300]], np.ascontiguousarray(x[perm[300:]])
            _, truth = faiss.knn(queries, gallery, 10)
            index = faiss.IndexHNSWFlat(x.shape[1], 4)
            index.hnsw.efConstruction = 16
            index.add(gallery)
            for e, ef in enumerate(FIDELITY_EF):
                params = faiss.SearchParametersHNSW()
                params.efSearch = ef
                _, found = index.search(queries, 10, params=params)
                recall[e] += recall_at_k(truth, found)
        for e, ef in enumerate(FIDELITY_EF):
            out[f"hnsw_ef{ef}"] = float(recall[e] / splits)
        return out
    finally:
        faiss.omp_set_num_threads(before)


def open_set_split(
    labels: npt.NDArray[np.int64], seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Gallery and probe rows of faces labelled ``labels`` (``0..P-1``), as a collected
    gallery is searched: ``(gallery_rows, probe_rows)``, both sorted.

    One photo of every person with two or more is held out as a probe of an enrolled
    person; as many one-photo people (at most half of them) are held out whole, as
    strangers. With no repeated person (a set of one photo each), a third of the faces
    are strangers. The split depends on ``labels`` and ``seed`` only, so real and
    synthetic faces of the same identity structure are split alike.
    """
    rng = np.random.default_rng([seed, 17])
    sizes = np.bincount(labels)
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    order = np.argsort(labels, kind="stable")  # rows of person p: order[first[p]:...]
    multi, single = np.flatnonzero(sizes >= 2), np.flatnonzero(sizes == 1)
    n_str = min(multi.size, single.size // 2) if multi.size else labels.size // 3
    strangers = rng.permutation(single)[:n_str]
    mated = order[first[multi] + rng.integers(0, sizes[multi])]
    probes = np.concatenate([order[first[strangers]], mated])
    gallery = np.setdiff1d(np.arange(labels.size), probes)
    return gallery, np.sort(probes)


FIDELITY_NLIST = 64  # IVF lists at a few thousand faces (about sqrt(n), as nlist_for)


@dataclass(frozen=True)
class Setting:
    """One search setting of a production structure, as :func:`production_misses` runs it:
    the efSearch of an HNSW graph, or the lists an IVF-PQ search probes."""

    kind: StructureKind
    effort: int
    default: bool

    @property
    def label(self) -> str:
        what = "efSearch" if self.kind is StructureKind.HNSW else "nprobe"
        return f"{self.kind.value} {what} {self.effort}"


def production_settings(tuning: FaissTuning | None = None) -> list[Setting]:
    """The default search effort of each approximate structure and the efforts below it:
    efSearch for HNSW, and nprobe of :data:`FIDELITY_NLIST` lists for IVF-PQ (the
    default probes the share of lists that production probes at a million faces)."""
    t = tuning or FaissTuning()
    # The share of lists production probes at a million faces (1,024 lists), here.
    nprobe = max(1, round(FIDELITY_NLIST * t.nprobe_for(1024) / 1024))
    hnsw = [ef for ef in (10, 16, 24, 32, 48, 64) if ef < t.hnsw_ef_search]
    ivf = [n for n in (1, 2, 3, 4) if n < nprobe]
    return (
        [Setting(StructureKind.HNSW, ef, False) for ef in hnsw]
        + [Setting(StructureKind.HNSW, t.hnsw_ef_search, True)]
        + [Setting(StructureKind.IVFPQ, n, False) for n in ivf]
        + [Setting(StructureKind.IVFPQ, nprobe, True)]
    )


def production_description(tuning: FaissTuning | None = None) -> str:
    """What :func:`production_misses` figures depend on (stored beside the real ones)."""
    t = tuning or FaissTuning()
    return (
        f"hnsw M {t.hnsw_m} efConstruction {t.hnsw_ef_construction} subspace residual "
        f"{t.subspace_residual}; ivfpq nlist {FIDELITY_NLIST} pq {t.pq_m}x4 candidates "
        f"{t.candidates(StructureKind.IVFPQ, 10)}; "
        + ", ".join(s.label for s in production_settings(t))
    )


def production_misses(
    x: FloatArray,
    labels: npt.NDArray[np.int64],
    splits: int,
    tuning: FaissTuning | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """How often the production structures miss a true top-10 neighbour of ``(n, d)`` faces.

    For each of ``splits`` :func:`open_set_split` splits, the FAISS backend's HNSW graph
    (``tuning``'s M, efConstruction and principal subspace fitted to the gallery) and
    its IVF-PQ structure (:data:`FIDELITY_NLIST` lists, fast-scan codes, candidates
    re-ranked exactly as the backend does) are built on the gallery, one thread, and
    every probe is searched at each of :func:`production_settings`. Returns ``(misses,
    slots)``: ``(splits, len(settings))`` int64 counts of exact top-10 ids not returned,
    and ``(splits,)`` the number of top-10 slots (probes x 10).
    """
    faiss = import_faiss()
    tuning = replace(tuning or FaissTuning(), ivf_nlist=FIDELITY_NLIST, ivf_nprobe=None)
    settings = production_settings(tuning)
    x = np.ascontiguousarray(x, dtype=np.float32)
    misses = np.zeros((splits, len(settings)), dtype=np.int64)
    slots = np.zeros(splits, dtype=np.int64)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        for s in range(splits):
            gallery, probes = open_set_split(labels, s)
            g, q = np.ascontiguousarray(x[gallery]), np.ascontiguousarray(x[probes])
            _, truth = faiss.knn(q, g, 10)
            slots[s] = truth.size
            built = {}
            for kind in (StructureKind.HNSW, StructureKind.IVFPQ):
                built[kind] = new_structure(kind, x.shape[1], len(g), tuning, sample=g)
                built[kind].add_with_ids(g, np.arange(len(g), dtype=np.int64))
            for e, setting in enumerate(settings):
                effort = (
                    replace(tuning, hnsw_ef_search=setting.effort)
                    if setting.kind is StructureKind.HNSW
                    else replace(tuning, ivf_nprobe=setting.effort)
                )
                cand = tuning.candidates(setting.kind, 10)
                index = built[setting.kind]
                params = search_params(index, setting.kind, effort, cand, None)
                _, rows = index.search(q, cand, params=params)
                found = _exact_top10(g, q, rows)
                misses[s, e] = sum(
                    int((~np.isin(t, f)).sum()) for t, f in zip(truth, found, strict=True)
                )
        return misses, slots
    finally:
        faiss.omp_set_num_threads(before)


def _exact_top10(g: FloatArray, q: FloatArray, rows: IdArray) -> IdArray:
    """The 10 of each probe's candidate ``rows`` (-1: none) nearest by exact distance."""
    diff = g[np.maximum(rows, 0)] - q[:, None, :]
    d2 = np.einsum("ijk,ijk->ij", diff, diff)
    d2[rows < 0] = np.inf
    order = np.argsort(d2, axis=1, kind="stable")[:, :10]
    found: IdArray = np.take_along_axis(rows, order, axis=1)
    return found


@dataclass(frozen=True)
class MissComparison:
    """Synthetic against real faces' miss rates at one setting (one row of the report).

    Rates are misses over top-10 slots, pooled over splits; ``difference`` is synthetic
    minus real, with ``standard_error`` over the per-split differences (splits pair real
    and synthetic data split alike); ``ratio`` is synthetic over real (NaN without a real
    miss).
    """

    setting: str
    default: bool
    real_misses: int
    real_rate: float
    synthetic_misses: int
    synthetic_rate: float
    difference: float
    standard_error: float
    ratio: float


Misses = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]
"""``(misses, slots)`` as :func:`production_misses` returns them."""


def compare_misses(
    settings: list[Setting], real: Misses, synthetic: Misses
) -> list[MissComparison]:
    """One :class:`MissComparison` per setting from two :func:`production_misses` results
    over the same splits."""
    (rm, rs), (sm, ss) = real, synthetic
    if rm.shape != sm.shape or rm.shape[1] != len(settings):
        raise ValueError("real and synthetic misses must cover the same splits and settings")
    per_split = sm / ss[:, None] - rm / rs[:, None]
    se = (
        per_split.std(axis=0, ddof=1) / math.sqrt(len(rs)) if len(rs) > 1 else per_split[0] * np.nan
    )
    real_slots, synthetic_slots = int(rs.sum()), int(ss.sum())
    rows = []
    for e, setting in enumerate(settings):
        r, m = int(rm[:, e].sum()), int(sm[:, e].sum())
        rows.append(
            MissComparison(
                setting=setting.label,
                default=setting.default,
                real_misses=r,
                real_rate=r / real_slots,
                synthetic_misses=m,
                synthetic_rate=m / synthetic_slots,
                difference=m / synthetic_slots - r / real_slots,
                standard_error=float(se[e]),
                ratio=(m / synthetic_slots) / (r / real_slots) if r else math.nan,
            )
        )
    return rows


def pooled_ratio(
    real: Misses, synthetic: Misses, columns: npt.NDArray[np.bool_] | None = None
) -> float:
    """Synthetic over real miss rate pooled over every split and the settings in
    ``columns`` (default: all): how much harder (> 1) or easier the synthetic faces are."""
    (rm, rs), (sm, ss) = real, synthetic
    if columns is not None:
        rm, sm = rm[:, columns], sm[:, columns]
    return float((sm.sum() / ss.sum()) / max(rm.sum() / rs.sum(), 1e-12))


def _psd_factor(cov: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``F`` with ``F @ F.T`` the nearest positive semi-definite matrix to ``cov``."""
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2.0)
    factor: npt.NDArray[np.float64] = vecs * np.sqrt(np.clip(vals, 0.0, None))[None, :]
    return factor


def fit_mixture(
    x: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int64],
    components: int,
    shrink: float,
    seed: int = 0,
) -> dict[str, npt.NDArray[Any]]:
    """Fit the generator's model to real descriptors ``x`` of identities ``labels``.

    Returns the arrays the stats file holds: ``mean``, ``within_factor`` (pooled
    within-identity covariance of identities with 2+ photos), ``between_factor``
    (the single-Gaussian model), and ``mix_weights``, ``mix_means``, ``mix_factors``:
    ``components`` k-means clusters of identity centres, each with its covariance less
    the within-identity noise its centres carry, shrunk by ``shrink`` towards the
    clusters' pooled covariance.
    """
    faiss = import_faiss()
    ids, y, counts = np.unique(labels, return_inverse=True, return_counts=True)
    dim = x.shape[1]
    centres = np.zeros((ids.size, dim))
    np.add.at(centres, y, x)
    centres /= counts[:, None]
    resid = x - centres[y]
    multi = counts[y] >= 2
    within = resid[multi].T @ resid[multi] / (multi.sum() - (counts >= 2).sum())
    total = np.cov(x, rowvar=False)
    if components == 1:
        assign = np.zeros(ids.size, dtype=np.int64)
    else:
        km = faiss.Kmeans(dim, components, niter=50, nredo=3, seed=seed)
        km.train(centres.astype(np.float32))
        assign = km.index.search(centres.astype(np.float32), 1)[1][:, 0]
    weights = np.bincount(assign, minlength=components).astype(np.float64)
    means = np.zeros((components, dim))
    covs = np.zeros((components, dim, dim))
    for j in range(components):
        sel = assign == j
        if sel.sum() < 2:
            continue
        means[j] = centres[sel].mean(0)
        # A centre of c photos carries within/c of photo noise: take it out.
        covs[j] = np.cov(centres[sel], rowvar=False) - within * np.mean(1.0 / counts[sel])
    keep = weights >= 2
    pooled = np.einsum("k,kij->ij", weights[keep], covs[keep]) / weights[keep].sum()
    factors = np.stack([_psd_factor((1 - shrink) * c + shrink * pooled) for c in covs])
    return {
        "mean": x.mean(0).astype(np.float32),
        "within_factor": _psd_factor(within).astype(np.float32),
        "between_factor": _psd_factor(total - within).astype(np.float32),
        "mix_weights": (weights * keep / weights[keep].sum()).astype(np.float32),
        "mix_means": means.astype(np.float32),
        "mix_factors": factors.astype(np.float32),
    }
