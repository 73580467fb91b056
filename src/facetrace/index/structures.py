"""FAISS structures the FAISS backend moves between as the gallery grows.

Every structure is keyed by *row number* in the backend's :class:`VectorStore` (labels
are rows), returns candidate rows, and is re-ranked afterwards with exact distances.

=========  ============================  ====================================================
kind       used while live count is      what it is
=========  ============================  ====================================================
flat       < ``flat_max`` (20 k)         ``IndexIDMap(IndexFlatL2)``: exact
hnsw       < ``hnsw_max`` (2 M)          ``IndexIDMap(IndexHNSWFlat)``, M=48: ~0.9 KB/face
ivfpq      larger                        ``IndexIVFPQ`` (nlist ~ sqrt(n), 32 x 8-bit codes): ~65 B
=========  ============================  ====================================================
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
    exact re-ranking (at least ``4 k``).
    """

    flat_max: int = 20_000
    hnsw_max: int = 2_000_000
    # Measured at 1M face-like vectors, one thread (README "Index"): flat storage with
    # M=48 beat 8-bit codes with M=32 (0.974 recall@10 at 28x exact) and M=16. Graphs
    # built in one FAISS call with efConstruction 200 matched efConstruction 100 at
    # ~2/3 of its efSearch. On the fitted face model (facelike.py) such a graph gave
    # recall@10 0.982 at efSearch 80, 0.987 at 96 and 0.991 at 112: 96 leaves margin
    # for build-to-build variance (scripts/sweep_hnsw.py 1000000 48 200).
    hnsw_m: int = 48
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 96
    ivf_nlist: int | None = None  # None: a power of two near sqrt(n), at least 256
    ivf_nprobe: int | None = None  # None: nlist // 16, at least 16
    pq_m: int = 32
    ivf_candidates: int = 300
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
        return max(16, nlist // 16)

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


def new_structure(kind: StructureKind, dim: int, count: int, tuning: FaissTuning) -> Any:
    """An empty, untrained structure of ``kind`` for about ``count`` vectors."""
    faiss = import_faiss()
    if kind is StructureKind.FLAT:
        return faiss.IndexIDMap(faiss.IndexFlatL2(dim))
    if kind is StructureKind.HNSW:
        inner = faiss.IndexHNSWFlat(dim, tuning.hnsw_m)
        inner.hnsw.efConstruction = tuning.hnsw_ef_construction
        idmap = faiss.IndexIDMap(inner)
        idmap.own_fields = True
        inner.this.disown()  # the IDMap frees it
        return idmap
    quantizer = faiss.IndexFlatL2(dim)
    index = faiss.IndexIVFPQ(quantizer, dim, tuning.nlist_for(count), tuning.pq_m, 8)
    index.own_fields = True
    quantizer.this.disown()
    return index


def kind_of(index: Any) -> StructureKind:
    """Recognise a structure read back from disk."""
    faiss = import_faiss()
    if isinstance(index, faiss.IndexIVF):
        return StructureKind.IVFPQ
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexHNSW):
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
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexHNSW):
        links = int(inner.hnsw.neighbors.size()) * 4
        return n * (int(inner.storage.sa_code_size()) + 8 + 8) + links
    return n * (int(inner.sa_code_size()) + 8)
