"""The same add/remove/search/persist scenarios on every backend, checked against the oracle.

Exact backends must return the oracle's ids (and distances); approximate ones must reach
their recall floor. Every backend must agree on counts and never return a removed id.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from facetrace.config import IndexBackend, Settings
from facetrace.evaluation.facelike import FaceLikeGenerator
from facetrace.index.base import NO_RESULT, FloatArray, IdArray, MaintainableIndex, VectorIndex
from facetrace.index.exact import ExactIndex
from facetrace.index.factory import open_index
from facetrace.index.faiss_backend import FaissIndex
from facetrace.index.structures import FaissTuning, StructureKind

DIM = 128


@dataclass(frozen=True)
class Backend:
    """How to open (and reopen) one backend, and how close to the oracle it must be."""

    name: str
    open: Callable[[], MaintainableIndex]
    exact: bool  # identical ids (and distances) as the oracle
    recall_floor: float  # recall@10 against the oracle, for approximate backends
    structure: StructureKind | None = None


def _faiss(path: Path, tuning: FaissTuning) -> Callable[[], MaintainableIndex]:
    return lambda: FaissIndex(DIM, path, tuning)


BACKENDS = ["exact", "faiss", "faiss-hnsw", "faiss-ivfpq", "milvus"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    name = request.param
    if name == "exact":
        settings = Settings(home=tmp_path, index_backend=IndexBackend.EXACT)
        yield Backend(name, lambda: open_index(settings, DIM), exact=True, recall_floor=1.0)
    elif name == "faiss":  # the default backend, through the factory: flat at this size
        settings = Settings(home=tmp_path, index_backend=IndexBackend.FAISS)
        yield Backend(
            name, lambda: open_index(settings, DIM), True, 1.0, structure=StructureKind.FLAT
        )
    elif name == "faiss-hnsw":
        tuning = FaissTuning(flat_max=500, background=False)
        yield Backend(name, _faiss(tmp_path / "h", tuning), False, 0.97, StructureKind.HNSW)
    elif name == "faiss-ivfpq":
        tuning = FaissTuning(
            flat_max=200, hnsw_max=1000, ivf_nlist=16, ivf_nprobe=8, background=False
        )
        yield Backend(name, _faiss(tmp_path / "i", tuning), False, 0.95, StructureKind.IVFPQ)
    else:
        uri = os.environ.get("FACETRACE_TEST_MILVUS_URI")
        if not uri:
            pytest.skip("FACETRACE_TEST_MILVUS_URI is not set (scripts/milvus_server.py)")
        settings = Settings(
            home=tmp_path,
            index_backend=IndexBackend.MILVUS,
            milvus_uri=uri,
            milvus_collection=f"congruence_{uuid.uuid4().hex[:12]}",
        )
        opened: list[MaintainableIndex] = []

        def open_milvus() -> MaintainableIndex:
            index = open_index(settings, DIM)
            opened.append(index)
            return index

        yield Backend(name, open_milvus, False, 0.97)
        from facetrace.index.milvus_backend import MilvusIndex

        cleanup = MilvusIndex(DIM, uri, settings.milvus_collection)
        cleanup.drop()
        cleanup.close()


N = 3000
K = 10


def _data() -> tuple[IdArray, FloatArray, FloatArray]:
    gen = FaceLikeGenerator(DIM, seed=3)
    ids, vecs = next(gen.gallery(N))
    # Store ids are sparse and unordered in real life.
    ids = np.random.default_rng(0).permutation(10 * N)[:N].astype(np.int64)
    return ids, vecs, gen.queries(100, N)


def _recall(truth: IdArray, got: IdArray) -> float:
    hits = [np.isin(t[t >= 0], g).mean() for t, g in zip(truth, got, strict=True) if (t >= 0).any()]
    return float(np.mean(hits))


def _compare(backend: Backend, oracle: ExactIndex, index: VectorIndex, q: FloatArray) -> None:
    assert index.count() == oracle.count()
    assert set(index.ids().tolist()) == set(oracle.ids().tolist())
    d_true, i_true = oracle.search(q, K)
    d_got, i_got = index.search(q, K)
    assert d_got.shape == i_got.shape == (q.shape[0], K)
    assert d_got.dtype == np.float32 and i_got.dtype == np.int64
    valid = i_got != NO_RESULT
    assert np.all(np.diff(np.where(valid, d_got, np.inf), axis=1) >= -1e-5)  # ascending
    assert np.isin(i_got[valid], oracle.ids()).all()  # nothing removed or unknown
    if backend.exact:
        np.testing.assert_array_equal(i_got, i_true)
        np.testing.assert_allclose(d_got, d_true, rtol=1e-5, atol=1e-5)
    else:
        assert _recall(i_true, i_got) >= backend.recall_floor
        # Distances are true L2 (not squared) wherever an id is returned.
        rows, cols = np.nonzero(valid)
        ids_all = oracle.ids()
        vec_of = dict(zip(ids_all.tolist(), range(ids_all.size), strict=True))
        _, vecs = _export_all(oracle)
        ref = np.linalg.norm(vecs[[vec_of[int(i)] for i in i_got[valid]]] - q[rows], axis=1)
        np.testing.assert_allclose(d_got[rows, cols], ref, rtol=1e-3, atol=1e-3)


def _export_all(index: ExactIndex) -> tuple[IdArray, FloatArray]:
    parts = list(index.export())
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def test_add_remove_search_persist(backend: Backend) -> None:
    ids, vecs, q = _data()
    oracle = ExactIndex(DIM)
    index = backend.open()
    try:
        for s in range(0, 2000, 500):
            oracle.add(ids[s : s + 500], vecs[s : s + 500])
            index.add(ids[s : s + 500], vecs[s : s + 500])
        index.wait_until_built()
        _compare(backend, oracle, index, q)
        if backend.structure is not None:
            assert index.stats()["structure"] == backend.structure.value

        # Remove every query's current nearest neighbours, some others, and unknown ids.
        _, nearest = oracle.search(q, 3)
        gone = np.unique(np.concatenate([nearest.ravel(), ids[:300:3]]))
        unknown = np.array([10 * N + 1, 10 * N + 2], dtype=np.int64)
        assert index.remove(np.concatenate([gone, unknown])) == oracle.remove(gone) == gone.size
        assert index.remove(gone[:5]) == 0  # already gone
        _compare(backend, oracle, index, q)
        _, found = index.search(q, K)
        assert not np.isin(found, gone).any()

        oracle.add(ids[2000:], vecs[2000:])
        index.add(ids[2000:], vecs[2000:])
        index.wait_until_built()
        _compare(backend, oracle, index, q)

        with pytest.raises(ValueError):
            index.add(ids[2000:2001], vecs[2000:2001])  # re-adding a live id
        index.save()
    finally:
        index.close()

    reopened = backend.open()
    try:
        _compare(backend, oracle, reopened, q)
        _, found = reopened.search(q, K)
        assert not np.isin(found, gone).any()
        got = {
            int(i): v
            for b_ids, b_vecs in reopened.export(batch=700)
            for i, v in zip(b_ids, b_vecs, strict=True)
        }
        ref_ids, ref_vecs = _export_all(oracle)
        assert set(got) == set(ref_ids.tolist())
        np.testing.assert_array_equal(np.stack([got[int(i)] for i in ref_ids]), ref_vecs)
    finally:
        reopened.close()


def test_k_beyond_count_pads_with_sentinels(backend: Backend) -> None:
    ids, vecs, q = _data()
    index = backend.open()
    try:
        d, i = index.search(q[:2], 3)
        assert (i == NO_RESULT).all() and np.isinf(d).all()  # empty index
        index.add(ids[:4], vecs[:4])
        d, i = index.search(q[:2], 7)
        assert i.shape == (2, 7)
        assert (np.sort(i[:, :4], axis=1) == np.sort(ids[:4])).all()
        assert (i[:, 4:] == NO_RESULT).all() and np.isinf(d[:, 4:]).all()
        assert index.remove(ids[:4]) == 4
        assert index.count() == 0
        _, i = index.search(q[:2], 3)
        assert (i == NO_RESULT).all()
    finally:
        index.close()
