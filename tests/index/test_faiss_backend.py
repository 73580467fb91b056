"""FAISS backend behaviour beyond the congruence suite: growth, background builds, files."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from facetrace.errors import IndexBackendError
from facetrace.evaluation.facelike import FaceLikeGenerator
from facetrace.index.base import MaintainableIndex, VectorIndex
from facetrace.index.exact import ExactIndex
from facetrace.index.faiss_backend import FaissIndex
from facetrace.index.structures import (
    FaissTuning,
    StructureKind,
    new_structure,
    search_dim,
    subspace_dims,
)

DIM = 128


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gen = FaceLikeGenerator(DIM, seed=5)
    ids, vecs = next(gen.gallery(6000))
    return ids, vecs, gen.queries(50, 6000)


def test_satisfies_protocols(tmp_path: Path) -> None:
    index = FaissIndex(DIM, tmp_path / "f")
    assert isinstance(index, VectorIndex) and isinstance(index, MaintainableIndex)
    index.close()


def test_grows_flat_to_hnsw_to_ivfpq_in_background_while_searching(data: tuple) -> None:
    ids, vecs, q = data
    tuning = FaissTuning(flat_max=1000, hnsw_max=4000, ivf_nlist=32, ivf_nprobe=16, train_size=4000)
    index = FaissIndex(DIM, None, tuning)
    oracle = ExactIndex(DIM)
    errors: list[BaseException] = []
    stop = threading.Event()
    removed = ids[:600:2]
    remove_returned = threading.Event()

    def searcher() -> None:  # searches keep working, and correct, during every build
        try:
            while not stop.is_set():
                after_remove = remove_returned.is_set()
                _, found = index.search(q[:5], 10)
                if after_remove and np.isin(found, removed).any():
                    raise AssertionError("a removed id came back")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=searcher)
    thread.start()
    kinds = []
    for s in range(0, 6000, 500):
        index.add(ids[s : s + 500], vecs[s : s + 500])
        oracle.add(ids[s : s + 500], vecs[s : s + 500])
        if s == 500:
            index.remove(removed)
            remove_returned.set()
            oracle.remove(removed)
        kinds.append(index.kind)
    index.wait_until_built()
    stop.set()
    thread.join()
    assert not errors
    assert index.kind is StructureKind.IVFPQ
    assert kinds[0] is StructureKind.FLAT
    assert index.count() == oracle.count() == 6000 - removed.size
    _, truth = oracle.search(q, 10)
    _, found = index.search(q, 10)
    assert not np.isin(found, removed).any()
    recall = np.mean([np.isin(t, f).mean() for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.95
    index.close()


def test_tombstones_trigger_compaction_and_rebuild_compacts_store(
    data: tuple, tmp_path: Path
) -> None:
    ids, vecs, q = data
    index = FaissIndex(DIM, tmp_path / "f", FaissTuning(flat_max=1000, background=False))
    index.add(ids[:3000], vecs[:3000])
    assert index.kind is StructureKind.HNSW
    index.remove(ids[:1000])  # a third of the structure: rebuilt without them
    assert index.stats()["tombstones"] == 0
    assert index.stats()["rows"] == 3000
    index.rebuild()
    assert index.stats()["rows"] == 2000
    index.save()
    files = sorted(p.name for p in (tmp_path / "f").iterdir() if p.name != "writer.lock")
    assert files[:3] == ["manifest.json", "meta.1.npz", "structure.1.faiss"]
    assert len(files) == 4 and files[3].endswith(".f32")  # the old vector file is gone
    assert (tmp_path / "f" / files[3]).stat().st_size == 2000 * DIM * 4
    _, found = index.search(q, 5)
    assert not np.isin(found, ids[:1000]).any()
    index.close()


def test_unsaved_rows_are_dropped_on_reopen(data: tuple, tmp_path: Path) -> None:
    ids, vecs, _ = data
    index = FaissIndex(DIM, tmp_path / "f")
    index.add(ids[:100], vecs[:100])
    index.save()
    index.add(ids[100:200], vecs[100:200])  # never saved: as if the process crashed
    index.close()
    again = FaissIndex(DIM, tmp_path / "f")
    assert again.count() == 100
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    assert manifest["rows"] == 100
    again.add(ids[100:200], vecs[100:200])  # the same ids can be added again
    assert again.count() == 200
    again.close()


def test_rejects_bad_input_and_use_after_close(data: tuple, tmp_path: Path) -> None:
    ids, vecs, _ = data
    index = FaissIndex(DIM, tmp_path / "f")
    with pytest.raises(ValueError):
        index.add(ids[:2], vecs[:2, :64])
    with pytest.raises(ValueError):
        index.add(np.array([1, 1]), vecs[:2])
    with pytest.raises(ValueError):
        index.add(np.array([-1]), vecs[:1])
    with pytest.raises(ValueError):
        index.search(vecs[:1], 0)
    index.save()
    index.close()
    with pytest.raises(IndexBackendError):
        index.search(vecs[:1], 1)
    with pytest.raises(IndexBackendError):
        FaissIndex(64, tmp_path / "f")  # dimension mismatch with the saved index


def test_removal_between_searches_reaches_the_cached_search_parameters(data: tuple) -> None:
    """Each removal hides its ids from the very next search, and exact results follow."""
    ids, vecs, q = data
    index = FaissIndex(DIM, None, FaissTuning(flat_max=1000, background=False))
    oracle = ExactIndex(DIM)
    index.add(ids[:3000], vecs[:3000])
    oracle.add(ids[:3000], vecs[:3000])
    assert index.kind is StructureKind.HNSW
    _, before = index.search(q[:10], 10)  # parameters cached without a selector
    gone: list[np.ndarray] = []
    for victims in (np.unique(before[:5, :3]), np.unique(before[5:, :3])):
        assert index.remove(victims) == victims.size
        oracle.remove(victims)
        gone.append(victims)
        assert index.stats()["tombstones"] == sum(g.size for g in gone)  # no rebuild
        d, found = index.search(q[:10], 10)
        assert not np.isin(found, np.concatenate(gone)).any()
        exact_d, truth = oracle.search(q[:10], 10)
        recall = np.mean([np.isin(t, f).mean() for t, f in zip(truth, found, strict=True)])
        assert recall >= 0.95
        hits = np.isin(found, truth)
        np.testing.assert_allclose(  # HNSW distances are exact ones
            np.sort(d[hits]), np.sort(exact_d[np.isin(truth, found)]), rtol=1e-4
        )
    index.close()


def test_hnsw_works_in_the_descriptors_subspace_and_keeps_it_on_disk(
    data: tuple, tmp_path: Path
) -> None:
    """dlib-like descriptors span about 80 of their 128 dimensions: the graph is built
    there, survives a reload, and still finds what exact search finds."""
    ids, vecs, q = data
    tuning = FaissTuning(flat_max=1000, background=False)
    index = FaissIndex(DIM, tmp_path / "f", tuning)
    index.add(ids, vecs)
    assert index.kind is StructureKind.HNSW
    assert 70 <= index.stats()["search_dim"] <= 90
    index.save()
    index.close()
    index = FaissIndex(DIM, tmp_path / "f", tuning)
    assert index.kind is StructureKind.HNSW and index.stats()["search_dim"] < DIM
    oracle = ExactIndex(DIM)
    oracle.add(ids, vecs)
    truth_d, truth = oracle.search(q, 10)
    found_d, found = index.search(q, 10)
    recall = np.mean([np.isin(t, f).mean() for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.99
    both = found == truth  # distances come from the full vectors, not the projection
    np.testing.assert_allclose(found_d[both], truth_d[both], rtol=1e-5)
    index.close()


def test_full_rank_embeddings_keep_every_dimension() -> None:
    rng = np.random.default_rng(0)
    full = rng.normal(size=(5000, DIM)).astype(np.float32)
    assert subspace_dims(full, 1e-5) == DIM
    low = full[:, :40] @ rng.normal(size=(40, DIM)).astype(np.float32)
    assert subspace_dims(low, 1e-5) == 40
    assert subspace_dims(low, 0.0) == DIM  # 0 turns the projection off
    structure = new_structure(StructureKind.HNSW, DIM, 5000, FaissTuning(), sample=full)
    assert search_dim(structure) == DIM


def test_one_writer_many_readers(data: tuple, tmp_path: Path) -> None:
    """Another process may open and search the index while one writes it; opening never
    cuts the writer's unsaved rows, and only the writer may change the index."""
    from facetrace.errors import IndexBusyError

    ids, vecs, _ = data
    writer = FaissIndex(DIM, tmp_path / "f")
    writer.add(ids[:100], vecs[:100])
    writer.save()
    writer.add(ids[100:200], vecs[100:200])  # appended, not yet saved
    reader = FaissIndex(DIM, tmp_path / "f")  # (a second handle: its own file lock)
    assert reader.count() == 100  # the saved generation
    assert reader.search(vecs[:1], 1)[1][0, 0] == ids[0]
    with pytest.raises(IndexBusyError, match="another process is writing"):
        reader.claim_writer()
    writer.add(ids[200:300], vecs[200:300])  # its rows are intact
    assert writer.search(vecs[250:251], 1)[1][0, 0] == ids[250]
    writer.save()
    writer.close()
    reader.claim_writer()  # free now: it reloads the newest generation first
    assert reader.count() == 300
    reader.add(ids[300:310], vecs[300:310])
    assert reader.search(vecs[305:306], 1)[1][0, 0] == ids[305]
    reader.close()
