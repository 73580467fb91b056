"""FAISS structures the FAISS backend moves between as the gallery grows.

Every structure is keyed by *row number* in the backend's :class:`VectorStore` (labels
are rows), returns candidate rows, and is re-ranked afterwards with exact distances.

=========  ============================  ====================================================
kind       used while live count is      what it is
=========  ============================  ====================================================
flat       < ``flat_max`` (20 k)         ``IndexIDMap(IndexFlatL2)``: exact
hnsw       < ``hnsw_max`` (1 M)          ``IndexIDMap([IndexPreTransform(PCA,] IndexHNSWFlat)``,
                                         M=48, in the descriptors' principal subspace
ivfpq      larger                        ``IndexIVFPQFastScan`` (nlist ~ sqrt(n), 64 x 4-bit
                                         codes scanned in SIMD registers): ~65 B
=========  ============================  ====================================================

At a million faces of a collected gallery (half the probes strangers), IVF-PQ with
4-bit fast-scan codes and 200 candidates re-ranked exactly gave recall@10 0.988 at
46-50x exhaustive search, built in 25 s with 165 B of RAM a face; the HNSW graph needed
efSearch 112 for 0.980 at 37x, built in 487 s with 820 B a face (docs/benchmarks.md "Index").

dlib's 128-D descriptors span about 80 dimensions: real ones and the bench's synthetic
ones alike keep all but 1e-6 of their variance in their first 80 principal directions.
An HNSW graph is built and searched in the subspace a training sample spans (projected
distances differ from full ones by at most the discarded variance, and re-ranking uses
the full vectors anyway), so each of its thousands of distance computations per query
reads 320 bytes instead of 512. Full-rank embeddings keep all their dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from facetrace.errors import MissingDependencyError


def import_faiss() -> Any:
    """Import faiss, or raise :class:`MissingDependencyError`."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a core dependency
        raise MissingDependencyError("faiss is not installed: pip install faiss-cpu") from exc
    return faiss


class StructureKind(StrEnum):
    """Which FAISS structure holds the codes."""

    FLAT = "flat"
    HNSW = "hnsw"
    IVFPQ = "ivfpq"


@dataclass(frozen=True)
class FaissTuning:
    """Size thresholds and search effort of the FAISS backend.

    Counts are live vectors; ``ivf_candidates`` is how many candidates IVF-PQ hands to
    exact re-ranking (at least ``4 k``). An IVF search probes ``nprobe_for(nlist)``
    lists: 3/32 of them (96 of 1,024 at a million faces) unless ``ivf_nprobe`` is set.
    """

    flat_max: int = 20_000
    hnsw_max: int = 1_000_000
    # Measured at 1M face-like vectors, one thread (docs/benchmarks.md "Index"): flat storage with
    # M=48 beat 8-bit codes with M=32 (0.974 recall@10 at 28x exact) and M=16. Graphs
    # built in one FAISS call with efConstruction 200 matched efConstruction 100 at
    # ~2/3 of its efSearch. On a collected gallery of the fitted face model (facelike.py,
    # half the probes strangers) such a graph gave recall@10 0.975 at efSearch 96, 0.984
    # at 112 and 0.988 at 128 (scripts/sweep_hnsw.py 1000000 48 200); on the earlier
    # enrolled shape 96 gave 0.987.
    hnsw_m: int = 48
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 112
    # An HNSW graph drops the principal directions that together hold at most this share
    # of a training sample's variance (0: keep every dimension).
    subspace_residual: float = 1e-5
    ivf_nlist: int | None = None  # None: a power of two near sqrt(n), at least 256
    ivf_nprobe: int | None = None  # None: 3/32 of nlist, at least 16
    pq_m: int = 64  # 4-bit sub-quantizers: 32 bytes a face
    ivf_candidates: int = 200
    train_size: int = 200_000
    compact_ratio: float = 0.2  # rebuild when this fraction of a structure is tombstones
    build_chunk: int = 20_000  # rows added per call while building (cancellation points)
    single_query_threads: int = 1  # OpenMP threads for batches below `batch_threshold`
    batch_threshold: int = 16
    background: bool = True  # build new structures in a thread; False: synchronously
    huge_pages: bool = True  # back graph and vectors with 2 MiB pages (hugepages.py)

    def kind_for(self, count: int, current: StructureKind | None = None) -> StructureKind:
        """Pick a structure for ``count`` live vectors; shrink only below half a threshold."""
        kind = StructureKind.FLAT
        if count >= self.hnsw_max:
            kind = StructureKind.IVFPQ
        elif count >= self.flat_max:
            kind = StructureKind.HNSW
        order = list(StructureKind)
        if current is not None and order.index(kind) < order.index(current):
            # Hysteresis: stay on the bigger structure until well under its threshold.
            lower = self.flat_max if current is StructureKind.HNSW else self.hnsw_max
            if count >= lower // 2:
                return current
        return kind

    def candidates(self, kind: StructureKind, k: int) -> int:
        if kind is StructureKind.FLAT:
            return k + 8
        if kind is StructureKind.HNSW:
            # Exact distances over live rows: its top k is final (more would come from
            # the same efSearch-wide search and be cut again).
            return k
        return max(self.ivf_candidates, 4 * k)

    def nprobe_for(self, nlist: int) -> int:
        if self.ivf_nprobe is not None:
            return self.ivf_nprobe
        return max(16, nlist * 3 // 32)

    def nlist_for(self, count: int) -> int:
        if self.ivf_nlist is not None:
            return self.ivf_nlist
        return int(max(256, 2 ** round(math.log2(max(1.0, math.sqrt(count))))))


@contextmanager
def omp_threads(n_queries: int, tuning: FaissTuning) -> Iterator[None]:
    """Use few OpenMP threads for single queries (several threads make them slower).

    ``omp_set_num_threads`` applies to the calling thread only, so a background build
    keeps its own thread count.
    """
    faiss = import_faiss()
    if n_queries >= tuning.batch_threshold:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(tuning.single_query_threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def subspace_dims(sample: npt.NDArray[np.float32], residual: float) -> int:
    """The fewest principal directions of ``(n, d)`` ``sample`` that leave out at most
    ``residual`` of its variance (``d`` when ``residual`` is 0 or the sample is tiny)."""
    n, dim = sample.shape
    if residual <= 0 or n <= dim:
        return int(dim)
    x = sample.astype(np.float64) - sample.mean(axis=0, dtype=np.float64)
    eig = np.clip(np.linalg.eigvalsh(x.T @ x)[::-1], 0.0, None)
    total = float(eig.sum())
    if total <= 0:
        return int(dim)
    left_out = total - np.cumsum(eig)  # variance outside the first k+1 directions
    return int(np.argmax(left_out <= residual * total)) + 1


def new_structure(
    kind: StructureKind,
    dim: int,
    count: int,
    tuning: FaissTuning,
    sample: npt.NDArray[np.float32] | None = None,
) -> Any:
    """An empty structure of ``kind`` for about ``count`` vectors.

    ``sample`` (``(n, dim)`` float32, vectors like those to come) trains what the
    structure needs: the principal subspace of an HNSW graph (without it, the graph
    keeps every dimension) and an IVF-PQ's centroids and codebooks (without it, the
    structure comes back untrained: call :func:`train`).
    """
    faiss = import_faiss()
    if kind is StructureKind.FLAT:
        return faiss.IndexIDMap(faiss.IndexFlatL2(dim))
    if kind is StructureKind.HNSW:
        dims = dim if sample is None else subspace_dims(sample, tuning.subspace_residual)
        inner = faiss.IndexHNSWFlat(dims, tuning.hnsw_m)
        inner.hnsw.efConstruction = tuning.hnsw_ef_construction
        graph = inner
        if sample is not None and dims < dim:
            pca = faiss.PCAMatrix(dim, dims)
            pca.train(np.ascontiguousarray(sample, dtype=np.float32))
            graph = faiss.IndexPreTransform(pca, inner)
            graph.own_fields = True  # it frees the projection and the graph
            pca.this.disown()
            inner.this.disown()
        idmap = faiss.IndexIDMap(graph)
        idmap.own_fields = True
        graph.this.disown()  # the IDMap frees it
        return idmap
    quantizer = faiss.IndexFlatL2(dim)
    index = faiss.IndexIVFPQFastScan(quantizer, dim, tuning.nlist_for(count), tuning.pq_m, 4)
    # Codes of the vectors themselves, not of their offsets from the list centroid: one
    # lookup table per query instead of one per probed list. At a million faces that
    # made searches 1.56x faster for recall@10 0.983 instead of 0.986 at the same nprobe.
    index.by_residual = False
    index.own_fields = True
    quantizer.this.disown()
    if sample is not None:
        train(index, sample)
    return index


def hnsw_graph(index: Any) -> Any | None:
    """The ``IndexHNSW`` of an HNSW structure (under its id map and projection), else None."""
    faiss = import_faiss()
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    if isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    return inner if isinstance(inner, faiss.IndexHNSW) else None


def search_dim(index: Any) -> int:
    """Dimensions a structure computes distances in (fewer than its input's for a graph
    in a principal subspace)."""
    graph = hnsw_graph(index)
    return int(graph.d if graph is not None else index.d)


def kind_of(index: Any) -> StructureKind:
    """Recognise a structure read back from disk."""
    faiss = import_faiss()
    if isinstance(index, faiss.IndexIVF):
        return StructureKind.IVFPQ
    if hnsw_graph(index) is not None:
        return StructureKind.HNSW
    return StructureKind.FLAT


def train(index: Any, sample: npt.NDArray[np.float32]) -> None:
    """Train ``index`` if it needs training (SQ ranges, IVF centroids, PQ codebooks)."""
    if not index.is_trained:
        index.train(np.ascontiguousarray(sample, dtype=np.float32))


def add_rows(index: Any, vectors: npt.NDArray[np.float32], rows: npt.NDArray[np.int64]) -> None:
    """Add ``(n, d)`` vectors labelled by their ``(n,)`` store rows."""
    index.add_with_ids(
        np.ascontiguousarray(vectors, dtype=np.float32),
        np.ascontiguousarray(rows, dtype=np.int64),
    )


def search_params(
    index: Any, kind: StructureKind, tuning: FaissTuning, candidates: int, selector: Any | None
) -> Any:
    """Search parameters (effort, and the live-row selector when there are tombstones)."""
    faiss = import_faiss()
    if kind is StructureKind.HNSW:
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(tuning.hnsw_ef_search, candidates)
    elif kind is StructureKind.IVFPQ:
        params = faiss.SearchParametersIVF()
        params.nprobe = tuning.nprobe_for(int(faiss.extract_index_ivf(index).nlist))
    else:
        params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector
    return params


def resident_bytes(index: Any) -> int:
    """Approximate heap bytes of a structure (codes, graph, ids, centroids)."""
    faiss = import_faiss()
    n = int(index.ntotal)
    if isinstance(index, faiss.IndexIVF):
        ivf = faiss.downcast_index(index)
        return n * (int(ivf.code_size) + 8) + int(ivf.nlist) * int(ivf.d) * 4
    graph = hnsw_graph(index)
    if graph is not None:
        links = int(graph.hnsw.neighbors.size()) * 4
        return n * (int(graph.storage.sa_code_size()) + 8 + 8) + links
    return n * (int(faiss.downcast_index(index.index).sa_code_size()) + 8)
