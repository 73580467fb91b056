"""Milvus backend specifics; the shared scenarios are in tests/congruence."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from facetrace.errors import IndexBackendError, MissingDependencyError

URI = os.environ.get("FACETRACE_TEST_MILVUS_URI")
needs_server = pytest.mark.skipif(not URI, reason="FACETRACE_TEST_MILVUS_URI is not set")


def test_missing_pymilvus_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # what an absent package looks like
    from facetrace.index.milvus_backend import MilvusIndex

    with pytest.raises(MissingDependencyError, match=r"facetrace\[milvus\]"):
        MilvusIndex(8, "http://127.0.0.1:1", "nothing")


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
def test_duplicates_dimension_and_strong_reads(collection: str) -> None:
    from facetrace.index.milvus_backend import MilvusIndex

    assert URI is not None
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(20, 8)).astype(np.float32)
    index = MilvusIndex(8, URI, collection)
    index.add(np.arange(20), vecs)
    with pytest.raises(ValueError, match="already present"):
        index.add(np.array([5, 100]), vecs[:2])  # Milvus itself would accept a duplicate key
    assert index.count() == 20
    # A removed id is gone from the very next search (Strong consistency).
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
