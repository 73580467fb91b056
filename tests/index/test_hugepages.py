"""Huge pages for FAISS structures: the kernel really backs the arrays, results unchanged."""

from __future__ import annotations

import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from facetrace.evaluation.facelike import FaceLikeGenerator
from facetrace.index.faiss_backend import FaissIndex
from facetrace.index.hugepages import HUGE_PAGE, advise_structure
from facetrace.index.structures import FaissTuning, StructureKind, add_rows, new_structure

DIM = 128
THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
needs_thp = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not THP.exists() or "[never]" in THP.read_text(),
    reason="transparent huge pages are off or not Linux",
)


def _anon_huge_bytes(address: int, nbytes: int) -> int:
    """AnonHugePages of the mappings of this process that overlap ``[address, +nbytes)``."""
    total, overlapping = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and ":" not in head:
            lo, hi = (int(x, 16) for x in head.split("-"))
            overlapping = lo < address + nbytes and address < hi
        elif overlapping and line.startswith("AnonHugePages:"):
            total += int(line.split()[1]) * 1024
    return total


@pytest.fixture(scope="module")
def gallery() -> tuple[np.ndarray, np.ndarray]:
    gen = FaceLikeGenerator(DIM, seed=11)
    _, vecs = next(gen.gallery(24_000))
    return vecs, gen.queries(40, 24_000)


@needs_thp
def test_hnsw_graph_and_vectors_get_huge_pages_and_identical_results(gallery: tuple) -> None:
    vecs, queries = gallery
    structure = new_structure(StructureKind.HNSW, DIM, vecs.shape[0], FaissTuning())
    add_rows(structure, vecs, np.arange(vecs.shape[0], dtype=np.int64))
    before = structure.search(queries, 10)

    covered = advise_structure(faiss, structure)

    hnsw = faiss.downcast_index(structure.index)
    codes = faiss.downcast_index(hnsw.storage).codes
    addr = int(faiss.rev_swig_ptr(codes.data(), codes.size()).ctypes.data)
    # Both arrays (12.3 MB of vectors, 9.2 MB of links) are big enough to be advised.
    assert covered >= (vecs.nbytes + hnsw.hnsw.neighbors.size() * 4) - 4 * HUGE_PAGE
    assert _anon_huge_bytes(addr, codes.size()) >= codes.size() - 2 * HUGE_PAGE
    after = structure.search(queries, 10)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_array_equal(before[0], after[0])


def test_small_and_ivf_structures_are_left_alone(gallery: tuple) -> None:
    vecs, _ = gallery
    flat = new_structure(StructureKind.FLAT, DIM, 1000, FaissTuning())
    add_rows(flat, vecs[:1000], np.arange(1000, dtype=np.int64))
    assert advise_structure(faiss, flat) == 0  # 512 KB: not worth a system call
    ivf = new_structure(StructureKind.IVFPQ, DIM, vecs.shape[0], FaissTuning(ivf_nlist=16, pq_m=8))
    ivf.train(vecs)
    ivf.add(vecs)
    assert advise_structure(faiss, ivf) == 0  # many small lists


@needs_thp
def test_backend_advises_after_build_and_reload(gallery: tuple, tmp_path: Path) -> None:
    vecs, queries = gallery
    tuning = FaissTuning(flat_max=1000, background=False)
    index = FaissIndex(DIM, tmp_path / "idx", tuning)
    index.add(np.arange(vecs.shape[0], dtype=np.int64), vecs)
    assert index.kind is StructureKind.HNSW
    # The graph keeps its vectors in the descriptors' principal subspace: at least
    # those (float32, search_dim wide) are backed by huge pages.
    graph_vectors = vecs.shape[0] * int(index.stats()["search_dim"]) * 4  # type: ignore[call-overload]
    assert index.stats()["huge_page_bytes"] >= graph_vectors - 2 * HUGE_PAGE
    expected = index.search(queries, 5)
    index.save()
    index.close()

    reopened = FaissIndex(DIM, tmp_path / "idx", tuning)
    covered = reopened.stats()["huge_page_bytes"]
    assert isinstance(covered, int) and covered >= graph_vectors - 2 * HUGE_PAGE
    assert _process_anon_huge_bytes() >= covered
    got = reopened.search(queries, 5)
    np.testing.assert_array_equal(expected[1], got[1])
    reopened.close()

    off = FaissIndex(DIM, tmp_path / "idx", FaissTuning(flat_max=1000, huge_pages=False))
    assert off.stats()["huge_page_bytes"] == 0
    off.close()


def _process_anon_huge_bytes() -> int:
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("AnonHugePages:"):
            return int(line.split()[1]) * 1024
    return 0
