"""Milvus backend specifics; the shared scenarios are in tests/congruence."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from facetrace.errors import IndexBackendError, MissingDependencyError
from facetrace.index.milvus_backend import GRACEFUL_TIME_S

URI = os.environ.get("FACETRACE_TEST_MILVUS_URI")
needs_server = pytest.mark.skipif(not URI, reason="FACETRACE_TEST_MILVUS_URI is not set")


def test_missing_pymilvus_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # what an absent package looks like
    from facetrace.index.milvus_backend import MilvusIndex

    with pytest.raises(MissingDependencyError, match=r"facetrace\[milvus\]"):
        MilvusIndex(8, "http://127.0.0.1:1", "nothing")


def test_a_milvus_lite_file_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("pymilvus")
    from facetrace.index.milvus_backend import MilvusIndex

    with caplog.at_level("WARNING"), pytest.raises(IndexBackendError):
        MilvusIndex(8, "/nonexistent/gallery.db", "faces", timeout=2)  # no milvus-lite here
    assert "brute force" in caplog.text


@pytest.fixture
def collection() -> Iterator[str]:
    from facetrace.index.milvus_backend import MilvusIndex

    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    assert URI is not None
    index = MilvusIndex(8, URI, name)
    index.drop()
    index.close()


@pytest.mark.milvus
@needs_server
def test_duplicates_dimension_and_reads_after_remove(collection: str) -> None:
    from facetrace.index.milvus_backend import MilvusIndex

    assert URI is not None
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(20, 8)).astype(np.float32)
    index = MilvusIndex(8, URI, collection)
    index.add(np.arange(20), vecs)
    with pytest.raises(ValueError, match="already present"):
        index.add(np.array([5, 100]), vecs[:2])  # Milvus itself would accept a duplicate key
    assert index.count() == 20
    # A removed id is gone from the very next search (a Strong read after a write).
    _, found = index.search(vecs[3:4], 1)
    assert found[0, 0] == 3
    assert index.remove(np.array([3, 999])) == 1
    d, found = index.search(vecs[3:4], 20)
    assert 3 not in found and found[0, -1] == -1 and np.isinf(d[0, -1])
    index.save()
    index.close()
    with pytest.raises(IndexBackendError, match="8-D"):
        MilvusIndex(16, URI, collection)
    with pytest.raises(IndexBackendError):
        index.count()  # closed


@pytest.mark.milvus
@needs_server
def test_a_removal_reaches_every_search_of_the_process_at_once(collection: str) -> None:
    """Searches after a write read Strong, whichever client of the process wrote;
    once the server's graceful time has passed they read Bounded and still see it."""
    from facetrace.index.milvus_backend import MilvusIndex

    assert URI is not None
    vecs = np.random.default_rng(1).normal(size=(200, 8)).astype(np.float32)
    writer, reader = MilvusIndex(8, URI, collection), MilvusIndex(8, URI, collection)
    try:
        writer.add(np.arange(200), vecs)
        _, found = reader.search(vecs[:10], 1)
        assert found[:, 0].tolist() == list(range(10))  # the reader sees the adds too
        for i in range(10):  # remove through one client, search through the other at once
            assert writer.remove(np.array([i])) == 1
            _, found = reader.search(vecs[i : i + 1], 5)
            assert i not in found
        assert reader.count() == 190
        assert reader.search_consistency() == "Strong"
        time.sleep(GRACEFUL_TIME_S + 1.1)
        assert reader.search_consistency() == "Bounded"  # no time-tick wait any more
        _, found = reader.search(vecs[:20], 1)
        assert not np.isin(found, np.arange(10)).any()
        assert found[10:, 0].tolist() == list(range(10, 20))
    finally:
        writer.close()
        reader.close()
