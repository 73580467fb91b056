"""Milvus backend: the gallery lives in a Milvus collection, for multi-node scale.

Needs the ``milvus`` extra (``pip install 'facetrace[milvus]'``: pymilvus 2.6, tested
against Milvus 2.3.5 standalone). The collection has an ``INT64`` primary key ``id`` and a
``FLOAT_VECTOR`` field ``vec``, an HNSW index (M=16, efConstruction=200) with the L2
metric. Milvus reports squared L2; this class returns L2.

Consistency: a *Strong* read waits for the server's next time tick (200 ms by default),
so searches read with *Bounded* consistency (data older than the server's
``common.gracefulTime``, 5 s by default, is always visible; no wait) unless this process
wrote to the collection more recently than that, through any ``MilvusIndex``: then they
read Strong. A search right after ``remove`` therefore never sees the removed ids.
(*Session* consistency would do this inside pymilvus, but Milvus 2.3 returns no
timestamp for deletes, so Session reads miss them.) ``count``, ``ids``, export and the
duplicate check always read Strong. A removal made by another process reaches this
one's searches within the graceful time; the engine drops any match whose face row is
gone from the metadata store meanwhile.

Milvus does not reject duplicate primary keys, so ``add`` checks for them first.

Milvus Lite (a local ``.db`` file as the URI, from ``pymilvus[milvus-lite]``) answers the
same API but searches by brute force in one process (0.35-2.8 s a search at 100k
vectors when measured for issue #6): a toy here, so opening one logs a warning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from facetrace.errors import IndexBackendError, MissingDependencyError
from facetrace.index.base import (
    FloatArray,
    IdArray,
    check_ids,
    check_vectors,
    empty_result,
)

log = logging.getLogger(__name__)

_INSERT_BATCH = 10_000
_LOOKUP_BATCH = 1_000
_SEARCH_BATCH = 1_000
_MAX_K = 16_384
_SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://", "grpcs://", "unix:")
_STRONG = "Strong"
_BOUNDED = "Bounded"
GRACEFUL_TIME_S = 5.0  # Milvus's common.gracefulTime default (Bounded reads' staleness)
_MARGIN_S = 1.0  # clock and scheduling slack on top of the graceful time

# (uri, collection) -> time.monotonic() of this process's last write there.
_last_write: dict[tuple[str, str], float] = {}
_last_write_lock = threading.Lock()


def _import_pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError as exc:
        raise MissingDependencyError(
            "the Milvus backend needs pymilvus: pip install 'facetrace[milvus]'"
        ) from exc
    return pymilvus


class MilvusIndex:
    """:class:`~facetrace.index.base.VectorIndex` over a Milvus collection."""

    def __init__(
        self,
        dim: int,
        uri: str,
        collection: str,
        *,
        hnsw_m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 128,
        timeout: float = 30.0,
        graceful_time_s: float = GRACEFUL_TIME_S,
    ) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        pymilvus = _import_pymilvus()
        if not uri.startswith(_SERVER_SCHEMES):
            log.warning(
                "%s is not a Milvus server URI: Milvus Lite searches by brute force in one "
                "process and is not fit for a face gallery; use a standalone server or a "
                "cluster (http://host:19530)",
                uri,
            )
        self._errors: tuple[type[BaseException], ...] = (pymilvus.MilvusException,)
        self._dim = dim
        self._name = collection
        self._ef = ef_search
        self._key = (uri, collection)
        self._fresh_after = graceful_time_s + _MARGIN_S
        self._closed = False
        try:
            self._client = pymilvus.MilvusClient(uri=uri, timeout=timeout)
            if self._client.has_collection(collection):
                self._check_schema()
                self._client.load_collection(collection)
            else:
                schema = pymilvus.MilvusClient.create_schema(
                    auto_id=False, enable_dynamic_field=False
                )
                schema.add_field("id", pymilvus.DataType.INT64, is_primary=True)
                schema.add_field("vec", pymilvus.DataType.FLOAT_VECTOR, dim=dim)
                params = self._client.prepare_index_params()
                params.add_index(
                    field_name="vec",
                    index_type="HNSW",
                    metric_type="L2",
                    params={"M": hnsw_m, "efConstruction": ef_construction},
                )
                self._client.create_collection(
                    collection, schema=schema, index_params=params, consistency_level=_STRONG
                )
        except self._errors as exc:
            raise IndexBackendError(f"Milvus at {uri}: {exc}") from exc

    def _check_schema(self) -> None:
        info = self._client.describe_collection(self._name)
        for field in info["fields"]:
            if field["name"] == "vec":
                dim = int(field["params"]["dim"])
                if dim != self._dim:
                    raise IndexBackendError(
                        f"collection {self._name} holds {dim}-D vectors, not {self._dim}"
                    )
                return
        raise IndexBackendError(f"collection {self._name} has no 'vec' field")

    @property
    def dim(self) -> int:
        return self._dim

    def _present(self, ids: IdArray) -> IdArray:
        """Those of ``ids`` that are in the collection (strongly consistent read)."""
        found: list[int] = []
        for start in range(0, ids.size, _LOOKUP_BATCH):
            chunk = ids[start : start + _LOOKUP_BATCH]
            rows = self._client.query(
                self._name,
                filter=f"id in {[int(i) for i in chunk]}",
                output_fields=["id"],
                consistency_level=_STRONG,
            )
            found.extend(int(r["id"]) for r in rows)
        return np.asarray(found, dtype=np.int64)

    def add(self, ids: IdArray, vectors: FloatArray) -> None:
        vecs = check_vectors(vectors, self._dim)
        new_ids = check_ids(ids, vecs.shape[0])
        self._check_open()
        if new_ids.size == 0:
            return
        if np.unique(new_ids).size != new_ids.size:
            raise ValueError("ids must be unique")
        try:
            if self._present(new_ids).size:
                raise ValueError("ids already present in the index")
            for start in range(0, new_ids.size, _INSERT_BATCH):
                stop = start + _INSERT_BATCH
                rows = [
                    {"id": int(i), "vec": v}
                    for i, v in zip(new_ids[start:stop], vecs[start:stop].tolist(), strict=True)
                ]
                self._client.insert(self._name, rows)
        except self._errors as exc:
            raise IndexBackendError(f"Milvus insert failed: {exc}") from exc
        finally:
            self._wrote()

    def remove(self, ids: IdArray) -> int:
        wanted = np.unique(check_ids(ids))
        self._check_open()
        if wanted.size == 0:
            return 0
        try:
            present = self._present(wanted)
            for start in range(0, present.size, _LOOKUP_BATCH):
                self._client.delete(self._name, ids=present[start : start + _LOOKUP_BATCH].tolist())
        except self._errors as exc:
            raise IndexBackendError(f"Milvus delete failed: {exc}") from exc
        finally:
            self._wrote()
        return int(present.size)

    def _wrote(self) -> None:
        with _last_write_lock:
            _last_write[self._key] = time.monotonic()

    def search_consistency(self) -> str:
        """The level the next search reads at: Strong within the graceful time of a write."""
        with _last_write_lock:
            last = _last_write.get(self._key)
        if last is not None and time.monotonic() - last < self._fresh_after:
            return _STRONG
        return _BOUNDED

    def search(self, queries: FloatArray, k: int) -> tuple[FloatArray, IdArray]:
        q = check_vectors(queries, self._dim, "queries")
        if k <= 0:
            raise ValueError("k must be positive")
        self._check_open()
        distances, ids = empty_result(q.shape[0], k)
        if q.shape[0] == 0:
            return distances, ids
        limit = min(k, _MAX_K)
        params = {"metric_type": "L2", "params": {"ef": max(self._ef, limit)}}
        level = self.search_consistency()
        try:
            for start in range(0, q.shape[0], _SEARCH_BATCH):
                hits = self._client.search(
                    self._name,
                    data=q[start : start + _SEARCH_BATCH].tolist(),
                    limit=limit,
                    anns_field="vec",
                    search_params=params,
                    consistency_level=level,
                )
                for row, found in enumerate(hits, start=start):
                    n = len(found)
                    if n:
                        d2 = np.asarray([h["distance"] for h in found], dtype=np.float64)
                        distances[row, :n] = np.sqrt(np.maximum(d2, 0.0))
                        ids[row, :n] = [int(h["id"]) for h in found]
        except self._errors as exc:
            raise IndexBackendError(f"Milvus search failed: {exc}") from exc
        return distances, ids

    def count(self) -> int:
        self._check_open()
        try:
            rows = self._client.query(
                self._name, filter="", output_fields=["count(*)"], consistency_level=_STRONG
            )
        except self._errors as exc:
            raise IndexBackendError(f"Milvus count failed: {exc}") from exc
        return int(rows[0]["count(*)"])

    def ids(self) -> IdArray:
        got = [b for b, _ in self._iterate(["id"], 16_384)]
        return np.concatenate(got) if got else np.empty((0,), dtype=np.int64)

    def _iterate(self, fields: list[str], batch: int) -> Iterator[tuple[IdArray, FloatArray]]:
        self._check_open()
        try:
            it = self._client.query_iterator(
                self._name,
                batch_size=batch,
                filter="id >= 0",
                output_fields=fields,
                consistency_level=_STRONG,
            )
            while True:
                rows = it.next()
                if not rows:
                    it.close()
                    return
                ids = np.asarray([r["id"] for r in rows], dtype=np.int64)
                if "vec" in fields:
                    vecs = np.asarray([r["vec"] for r in rows], dtype=np.float32)
                else:
                    vecs = np.empty((ids.size, 0), dtype=np.float32)
                yield ids, vecs
        except self._errors as exc:
            raise IndexBackendError(f"Milvus query failed: {exc}") from exc

    def export(self, batch: int = 65_536) -> Iterator[tuple[IdArray, FloatArray]]:
        """Yield ``(ids, vectors)`` batches (at most 16,384 rows each, Milvus's limit)."""
        yield from self._iterate(["id", "vec"], min(batch, _MAX_K))

    def save(self) -> None:
        """Flush inserts into sealed segments (Milvus persists them itself)."""
        self._check_open()
        try:
            self._client.flush(self._name)
        except self._errors as exc:
            raise IndexBackendError(f"Milvus flush failed: {exc}") from exc

    def rebuild(self) -> None:
        """Flush and compact the collection so deleted rows are dropped from segments."""
        self.save()
        try:
            self._client.compact(self._name)
        except self._errors as exc:
            raise IndexBackendError(f"Milvus compaction failed: {exc}") from exc

    def wait_until_built(self, timeout: float | None = None) -> bool:
        return True

    def stats(self) -> dict[str, object]:
        return {
            "backend": "milvus",
            "structure": "hnsw",
            "collection": self._name,
            "dim": self._dim,
            "count": self.count(),
        }

    def drop(self) -> None:
        """Delete the collection and everything in it (tests, benchmarks)."""
        self._check_open()
        try:
            self._client.drop_collection(self._name)
        except self._errors as exc:
            raise IndexBackendError(f"Milvus drop failed: {exc}") from exc

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()

    def _check_open(self) -> None:
        if self._closed:
            raise IndexBackendError("the index is closed")
