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
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from facetrace.index.base import FloatArray, IdArray
from facetrace.index.structures import import_faiss

STATS_FILE = Path(__file__).resolve().parent.parent / "data" / "dlib_descriptor_stats.npz"
CHUNK = 65_536  # faces per generated chunk; chunks are independent and reproducible
FIDELITY_EF = (10, 16, 24, 40)  # efSearch values of the weak-HNSW recall curve

Model = Literal["mixture", "gaussian"]
MODEL_KEYS = ("mean", "within_factor", "between_factor", "mix_weights", "mix_means", "mix_factors")


class FaceLikeGenerator:
    """Deterministic face-like descriptors: identities with within-identity spread.

    ``gallery(n)`` yields ``(ids, vectors)`` chunks (ids ``0..n-1``); the same seed gives
    the same data whatever the chunking of the caller. Identities have a geometric
    number of photos (mean ``photos_per_identity``). ``stats`` is a model as
    :func:`fit_mixture` returns it (default: the one in :data:`STATS_FILE`).
    """

    def __init__(
        self,
        dim: int = 128,
        seed: int = 0,
        photos_per_identity: float = 4.0,
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
        self._ppi = photos_per_identity

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
        sizes = rng.geometric(1.0 / self._ppi, size=CHUNK)
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

    def queries(self, m: int, n: int, impostor_fraction: float = 0.2) -> FloatArray:
        """``(m, dim)`` float32 probes: new photos of gallery people, and of strangers."""
        rng = np.random.default_rng([self._seed, 10**9 + 1])
        out = np.empty((m, self.dim), dtype=np.float32)
        n_imp = round(m * impostor_fraction)
        out[:n_imp] = self.photos(rng, self.centres(rng, n_imp))
        faces = np.sort(rng.choice(n, size=m - n_imp, replace=False))
        for c in np.unique(faces // CHUNK):
            centres, labels, _ = self._chunk(int(c))
            sel = np.flatnonzero(faces // CHUNK == c)
            out[n_imp + sel] = self.photos(rng, centres[labels[faces[sel] - c * CHUNK]])
        return out

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
