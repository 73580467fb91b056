"""The default index backend: FAISS structures chosen by size, exact re-ranking, tombstones.

How it works:

- Every vector is kept exactly in a :class:`~facetrace.index.store.VectorStore` (a
  memory-mapped file when the index has a folder) at an append-only *row*.
- A FAISS *structure* (see :mod:`facetrace.index.structures`) indexes rows: exact flat
  while small, HNSW over full vectors, then IVF-PQ as the gallery grows. Each search asks
  it for candidate rows; IVF-PQ's are re-ranked with exact L2 distances (float64), and
  flat and HNSW distances are exact already, so flat results equal the oracle's. The
  HNSW graph and its vectors are backed by 2 MiB pages (:mod:`facetrace.index.hugepages`).
- ``remove`` marks rows dead (tombstones); searches pass a bitmap of live rows to FAISS
  so dead rows are never returned. When tombstones pass ``compact_ratio`` of a
  structure, or the live count calls for another kind of structure, a new structure is
  trained and filled in a background thread from a snapshot; searches and writes go on
  against the old one, rows added meanwhile are caught up, and the two are swapped
  under a lock. :meth:`rebuild` also compacts the store itself.
- ``save`` writes ``structure.<gen>.faiss`` and ``meta.<gen>.npz`` to temporary names,
  renames them, then renames ``manifest.json`` over the old one: a crash leaves the last
  complete save. Rows appended after the last save are cut off when reopening.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facetrace import faults
from facetrace.errors import IndexBackendError, IndexBusyError
from facetrace.index.base import (
    FloatArray,
    IdArray,
    check_ids,
    check_vectors,
    empty_result,
)
from facetrace.index.hugepages import advise_structure
from facetrace.index.store import VectorStore
from facetrace.index.structures import (
    FaissTuning,
    StructureKind,
    add_rows,
    import_faiss,
    kind_of,
    new_structure,
    omp_threads,
    resident_bytes,
    search_dim,
    search_params,
)

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
WRITER_LOCK = "writer.lock"
FORMAT_VERSION = 1
_RERANK_CHUNK = 64  # queries re-ranked at a time (bounds the gathered candidate block)
_NO_ID = np.iinfo(np.int64).max  # sorts after every real id
_RERANK_MARGIN = 8  # candidates kept past k by the float32 cut before the float64 order
_NO_ROWS = np.empty((0,), dtype=np.int64)


class FaissIndex:
    """FAISS-backed :class:`~facetrace.index.base.VectorIndex` with persistence.

    ``path`` is a folder (created on first save) or ``None`` for a memory-only index.
    """

    def __init__(self, dim: int, path: Path | None = None, tuning: FaissTuning | None = None):
        if dim <= 0:
            raise ValueError("dim must be positive")
        self._faiss = import_faiss()
        self._dim = dim
        self._dir = path
        self._tuning = tuning or FaissTuning()
        self._lock = threading.RLock()
        self._writer_fh: Any = None  # held flock: this process is the index's one writer
        self._closed = False
        self._generation = 0
        self._vectors_name = "vectors.0.f32"
        self._indexed = 0  # rows below this were handed to the structure; the rest are pending
        self._row_ids = np.empty((0,), dtype=np.int64)  # row -> id
        self._live = np.empty((0,), dtype=bool)  # row -> not removed
        self._sorted_ids = np.empty((0,), dtype=np.int64)  # live ids, ascending
        self._sorted_rows = np.empty((0,), dtype=np.int64)  # their rows
        self._version = 0  # bumped when the live set changes (invalidates the selector)
        self._selector: tuple[int, Any, Any] | None = None
        # Search parameters for the current structure; reset whenever it is replaced.
        self._params: tuple[tuple[StructureKind, int, int], Any] | None = None
        self._builder: threading.Thread | None = None
        self._cancel = threading.Event()
        self._build_error: BaseException | None = None
        self._huge_page_bytes = 0  # covered by the last huge-page request
        self._full_dim = True  # the structure computes distances on the full vectors
        if path is not None and (path / MANIFEST).exists():
            self._load(path)
        else:
            # A vectors file with no manifest holds rows never saved: claim() cuts them.
            store_path = None if path is None else path / self._vectors_name
            self._store = VectorStore(dim, store_path)
            self._kind = StructureKind.FLAT
            self._structure: Any = new_structure(StructureKind.FLAT, dim, 0, self._tuning)

    # --- protocol ---------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    def add(self, ids: IdArray, vectors: FloatArray) -> None:
        vecs = check_vectors(vectors, self._dim)
        new_ids = check_ids(ids, vecs.shape[0])
        if new_ids.size == 0:
            return
        if np.unique(new_ids).size != new_ids.size:
            raise ValueError("ids must be unique")
        with self._lock:
            self._check_open()
            self._claim_writer()
            pos = np.searchsorted(self._sorted_ids, new_ids)
            clipped = np.minimum(pos, max(self._sorted_ids.size - 1, 0))
            if self._sorted_ids.size and (self._sorted_ids[clipped] == new_ids).any():
                raise ValueError("ids already present in the index")
            first = self._store.append(vecs)
            rows = np.arange(first, first + vecs.shape[0], dtype=np.int64)
            self._row_ids = _grow(self._row_ids, self._store.rows)
            self._live = _grow(self._live, self._store.rows)
            self._row_ids[rows] = new_ids
            self._live[rows] = True
            order = np.argsort(new_ids, kind="stable")
            at = np.searchsorted(self._sorted_ids, new_ids[order])
            self._sorted_ids = np.insert(self._sorted_ids, at, new_ids[order])
            self._sorted_rows = np.insert(self._sorted_rows, at, rows[order])
            self._version += 1
            self._maybe_rebuild()
            self._catch_up()

    def remove(self, ids: IdArray) -> int:
        wanted = np.unique(check_ids(ids))
        with self._lock:
            self._check_open()
            if wanted.size:
                self._claim_writer()
            if wanted.size == 0 or self._sorted_ids.size == 0:
                return 0
            pos = np.searchsorted(self._sorted_ids, wanted)
            pos = pos[pos < self._sorted_ids.size]
            pos = pos[np.isin(self._sorted_ids[pos], wanted)]
            if pos.size == 0:
                return 0
            self._live[self._sorted_rows[pos]] = False
            self._sorted_ids = np.delete(self._sorted_ids, pos)
            self._sorted_rows = np.delete(self._sorted_rows, pos)
            self._version += 1
            self._maybe_rebuild()
            return int(pos.size)

    def search(self, queries: FloatArray, k: int) -> tuple[FloatArray, IdArray]:
        q = check_vectors(queries, self._dim, "queries")
        if k <= 0:
            raise ValueError("k must be positive")
        with self._lock:
            self._check_open()
            live = self._sorted_ids.size
            if live == 0 or q.shape[0] == 0:
                return empty_result(q.shape[0], k)
            structure, kind = self._structure, self._kind
            rows_total = self._store.rows
            pending = _NO_ROWS
            if self._indexed < rows_total:
                pending = np.arange(self._indexed, rows_total, dtype=np.int64)
                pending = pending[self._live[pending]]
            cand = min(self._tuning.candidates(kind, k), int(structure.ntotal))
            if cand > 0:
                params = self._search_params(structure, kind, cand, live - pending.size)
                with omp_threads(q.shape[0], self._tuning):
                    try:
                        d2, rows = structure.search(q, cand, params=params)
                    except RuntimeError as exc:
                        raise IndexBackendError(f"faiss search failed: {exc}") from exc
                if kind is StructureKind.HNSW and not pending.size and self._full_dim:
                    # HNSW over full vectors returns exact squared distances of live
                    # rows only (the selector drops tombstones): no re-ranking needed.
                    # In a subspace they are off by the dropped variance: re-ranked below.
                    return self._hnsw_result(d2, rows, k)
            else:
                rows = np.full((q.shape[0], 0), -1, dtype=np.int64)
            if pending.size:
                rows = np.concatenate([rows, self._scan(q, pending, k + 8)], axis=1)
            kk = min(k, rows.shape[1])
            if q.shape[0] == 1 and kk == k:  # a single search: its result as it is
                return self._rerank_one(q[0], rows[0], k)
            distances, ids = empty_result(q.shape[0], k)
            for start in range(0, q.shape[0], _RERANK_CHUNK):
                stop = start + _RERANK_CHUNK
                d, i = self._rerank(q[start:stop], rows[start:stop], kk)
                distances[start:stop, :kk] = d
                ids[start:stop, :kk] = i
        return distances, ids

    def count(self) -> int:
        with self._lock:
            return int(self._sorted_ids.size)

    def ids(self) -> IdArray:
        with self._lock:
            return self._sorted_ids.copy()

    def save(self) -> None:
        with self._lock:
            self._check_open()
            if self._dir is None:
                return
            self._claim_writer()
            try:
                gen, structure_name, meta_name = self._write_generation()
            except (OSError, IndexBackendError) as exc:  # a full disk, most often:
                for f in self._dir.glob("*.tmp"):  # the last saved generation stands
                    f.unlink(missing_ok=True)
                raise IndexBackendError(f"could not save the index in {self._dir}: {exc}") from exc
            self._generation = gen
            self._advise_huge_pages(self._structure)  # arrays grown by adds since the build
            keep = {MANIFEST, structure_name, meta_name, self._vectors_name}
            for f in self._dir.iterdir():
                if f.name not in keep and f.suffix in {".faiss", ".npz", ".f32", ".tmp"}:
                    f.unlink(missing_ok=True)

    def _write_generation(self) -> tuple[int, str, str]:
        """Write the next generation's files and manifest; returns ``(generation,
        structure file, meta file)``. Called under the lock."""
        if self._dir is None:
            raise IndexBackendError("an in-memory index has no files to write")
        self._dir.mkdir(parents=True, exist_ok=True)
        gen = self._generation + 1
        rows = self._store.rows
        self._store.sync()
        structure_name = f"structure.{gen}.faiss"
        meta_name = f"meta.{gen}.npz"
        tmp = self._dir / (structure_name + ".tmp")
        try:
            self._faiss.write_index(self._structure, str(tmp))
        except RuntimeError as exc:
            raise IndexBackendError(f"could not write {tmp}: {exc}") from exc
        _fsync_replace(tmp, self._dir / structure_name)
        tmp = self._dir / (meta_name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, row_ids=self._row_ids[:rows], live=self._live[:rows])
        _fsync_replace(tmp, self._dir / meta_name)
        manifest = {
            "format": FORMAT_VERSION,
            "dim": self._dim,
            "rows": rows,
            "indexed": min(self._indexed, rows),
            "generation": gen,
            "structure": structure_name,
            "kind": self._kind.value,
            "meta": meta_name,
            "vectors": self._vectors_name,
        }
        tmp = self._dir / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        _fsync_replace(tmp, self._dir / MANIFEST)
        return gen, structure_name, meta_name

    def close(self) -> None:
        self._cancel.set()
        builder = self._builder
        if builder is not None:
            builder.join()
        with self._lock:
            if not self._closed:
                self._closed = True
                self._store.close()
                self._structure = None
                self._params = None
                if self._writer_fh is not None:
                    self._writer_fh.close()  # releases the writer lock
                    self._writer_fh = None

    # --- maintenance ------------------------------------------------------------------

    @property
    def kind(self) -> StructureKind:
        """The structure searches use now."""
        return self._kind

    def wait_until_built(self, timeout: float | None = None) -> bool:
        """Wait for a background build to finish; True when none is running.

        Raises :class:`IndexBackendError` if the last build failed.
        """
        builder = self._builder
        if builder is not None:
            builder.join(timeout)
            if builder.is_alive():
                return False
        if self._build_error is not None:
            err, self._build_error = self._build_error, None
            raise IndexBackendError(f"background index build failed: {err}") from err
        return True

    def rebuild(self) -> None:
        """Compact the store (drop removed rows) and rebuild the structure, synchronously."""
        self.wait_until_built()
        with self._lock:
            self._check_open()
            self._claim_writer()
            rows = self._store.rows
            keep = np.flatnonzero(self._live[:rows])
            if keep.size != rows:
                self._compact_store(keep)
            self._build(self._tuning.kind_for(self.count()), in_background=False)

    def stats(self) -> dict[str, object]:
        """Counts and sizes: live, tombstones, structure kind, bytes in RAM and on disk."""
        with self._lock:
            self._check_open()
            structure_bytes = resident_bytes(self._structure)
            disk = 0
            if self._dir is not None and self._dir.exists():
                disk = sum(f.stat().st_size for f in self._dir.iterdir() if f.is_file())
            rows = self._store.rows
            return {
                "backend": "faiss",
                "structure": self._kind.value,
                "dim": self._dim,
                "search_dim": search_dim(self._structure),
                "count": self.count(),
                "rows": rows,
                "tombstones": int(self._structure.ntotal) - self.count(),
                "building": self._builder is not None and self._builder.is_alive(),
                "resident_bytes": structure_bytes + rows * 9 + self.count() * 16,
                "vector_bytes": rows * self._dim * 4,
                "disk_bytes": disk,
                "huge_page_bytes": self._huge_page_bytes,
            }

    def export(self, batch: int = 65_536) -> Iterator[tuple[IdArray, FloatArray]]:
        """Yield ``(ids, vectors)`` batches of every live vector, exactly as added."""
        with self._lock:
            self._check_open()
            rows = np.sort(self._sorted_rows)
            view = self._store.view()
            row_ids = self._row_ids
        for start in range(0, rows.size, batch):
            chunk = rows[start : start + batch]
            yield row_ids[chunk].copy(), np.array(view[chunk], dtype=np.float32)

    # --- internals --------------------------------------------------------------------

    def claim_writer(self, wait: float = 0.0) -> None:
        """Become this index's writer now, waiting up to ``wait`` seconds for another
        (see :meth:`_claim_writer`)."""
        with self._lock:
            self._check_open()
            self._claim_writer(wait)

    def _claim_writer(self, wait: float = 10.0) -> None:
        """Become the one process that writes this index (lock held), or raise
        :class:`IndexBusyError` if another process is writing it. Any process may open
        and search an index; only the writer appends, removes and saves. A process that
        loaded an older generation reloads the newest one first."""
        if self._dir is None or self._writer_fh is not None:
            return
        import fcntl

        self._dir.mkdir(parents=True, exist_ok=True)
        fh = open(self._dir / WRITER_LOCK, "a")  # noqa: SIM115 - held until close()
        deadline = time.monotonic() + wait  # a short-lived writer (a repair) may finish
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.close()
                    raise IndexBusyError(
                        f"another process is writing the index in {self._dir}; run this "
                        "again when it has finished"
                    ) from None
                time.sleep(0.1)
        self._writer_fh = fh
        manifest = self._dir / MANIFEST
        if manifest.exists():
            saved = json.loads(manifest.read_text())
            if int(saved["generation"]) != self._generation:
                self._store.close()
                self._load(self._dir)  # another process saved since this one loaded
        self._store.claim()

    def _check_open(self) -> None:
        if self._closed:
            raise IndexBackendError("the index is closed")

    def _advise_huge_pages(self, structure: Any) -> None:
        if self._tuning.huge_pages:
            self._huge_page_bytes = advise_structure(self._faiss, structure)
            log.debug("huge pages over %d bytes of the structure", self._huge_page_bytes)

    def _live_selector(self) -> Any:
        if self._selector is None or self._selector[0] != self._version:
            rows = self._store.rows
            bitmap = np.packbits(self._live[:rows], bitorder="little")
            sel = self._faiss.IDSelectorBitmap(rows, self._faiss.swig_ptr(bitmap))
            self._selector = (self._version, bitmap, sel)  # the bitmap must outlive sel
        return self._selector[2]

    def _search_params(self, structure: Any, kind: StructureKind, cand: int, indexed: int) -> Any:
        """Search parameters for ``structure``, cached until it or the live set changes.

        ``indexed``: live rows the structure holds; fewer than its ``ntotal`` means it
        holds tombstones, which the live-row selector hides.
        """
        version = self._version if structure.ntotal > indexed else -1
        key = (kind, cand, version)
        if self._params is None or self._params[0] != key:
            selector = self._live_selector() if version >= 0 else None
            self._params = (key, search_params(structure, kind, self._tuning, cand, selector))
        return self._params[1]

    def _hnsw_result(
        self, d2: FloatArray, rows: npt.NDArray[np.int64], k: int
    ) -> tuple[FloatArray, IdArray]:
        """Final ``(distances, ids)`` from an HNSW search's squared distances and rows."""
        found = rows >= 0
        if found.all():
            distances = np.sqrt(np.maximum(d2, 0, out=d2), out=d2)
            ids = self._row_ids[rows]
        else:
            distances = np.where(found, np.sqrt(np.maximum(d2, 0)), np.inf).astype(np.float32)
            ids = np.where(found, self._row_ids[np.where(found, rows, 0)], -1)
        if rows.shape[1] == k:
            return distances, ids
        out_d, out_i = empty_result(rows.shape[0], k)
        out_d[:, : rows.shape[1]] = distances
        out_i[:, : rows.shape[1]] = ids
        return out_d, out_i

    def _scan(self, q: FloatArray, rows: npt.NDArray[np.int64], k: int) -> npt.NDArray[np.int64]:
        """Exhaustive top-``k`` rows among ``rows`` (not yet in the structure), -1 padded."""
        k = min(k, rows.size)
        vecs = self._store.take(rows)
        with omp_threads(q.shape[0], self._tuning):
            _, idx = self._faiss.knn(q, vecs, k)
        return np.where(idx >= 0, rows[np.maximum(idx, 0)], -1).astype(np.int64)

    def _catch_up(self) -> None:
        """Hand pending rows to the structure when no build is running (lock held)."""
        if self._builder is not None and self._builder.is_alive():
            return
        rows = self._store.rows
        if self._indexed >= rows:
            return
        extra = np.arange(self._indexed, rows, dtype=np.int64)
        extra = extra[self._live[extra]]
        try:
            for start in range(0, extra.size, self._tuning.build_chunk):
                part = extra[start : start + self._tuning.build_chunk]
                add_rows(self._structure, self._store.take(part), part)
        except RuntimeError as exc:
            raise IndexBackendError(f"faiss add failed: {exc}") from exc
        self._indexed = rows

    def _rerank(
        self, q: FloatArray, rows: npt.NDArray[np.int64], kk: int
    ) -> tuple[FloatArray, IdArray]:
        """The ``kk`` nearest of ``(n, c)`` candidate ``rows`` by exact float64 distance,
        ties broken by id: ``(distances, ids)``, inf / -1 where fewer were found.

        Many candidates (IVF-PQ hands over hundreds) are first cut to ``kk`` plus a
        margin by float32 distance; float32 rounding (~1e-7 relative) cannot move a
        vector past that margin, so the float64 order of the survivors is final.
        """
        if rows.shape[0] == 1:
            return self._rerank_one(q[0], rows[0], kk)
        valid = rows >= 0
        valid &= self._live[np.where(valid, rows, 0)]
        safe = np.where(valid, rows, 0)
        line = np.arange(rows.shape[0])[:, None]
        keep = kk + _RERANK_MARGIN
        if rows.shape[1] > keep:
            d32 = self._store_distances(q, safe)
            d32[~valid] = np.inf
            near = np.argpartition(d32, keep - 1, axis=1)[:, :keep]
            safe, valid = safe[line, near], valid[line, near]
        cand = self._store.take(safe)
        diff64 = cand.astype(np.float64) - q.astype(np.float64)[:, None, :]
        d2 = np.einsum("ijk,ijk->ij", diff64, diff64)
        d2[~valid] = np.inf
        cand_ids = np.where(valid, self._row_ids[safe], _NO_ID)
        order = np.lexsort((cand_ids, d2), axis=-1)[:, :kk]
        best_d2, best_ids = d2[line, order], cand_ids[line, order]
        best_ids[best_d2 == np.inf] = -1
        return np.sqrt(best_d2).astype(np.float32), best_ids

    def _rerank_one(
        self, q: FloatArray, rows: npt.NDArray[np.int64], kk: int
    ) -> tuple[FloatArray, IdArray]:
        """:meth:`_rerank` for one query's ``(c,)`` candidate rows, in fewer array calls
        (a single search is dominated by their fixed cost)."""
        rows = rows[rows >= 0]
        rows = rows[self._live[rows]]
        keep = kk + _RERANK_MARGIN
        if rows.size > keep:
            rows = rows[np.argpartition(self._store_distances(q, rows), keep - 1)[:keep]]
        vecs = self._store.take(rows)
        diff64 = vecs.astype(np.float64) - q.astype(np.float64)
        d2 = np.einsum("ij,ij->i", diff64, diff64)
        ids = self._row_ids[rows]
        order = np.lexsort((ids, d2))[:kk]
        distances, found = empty_result(1, kk)
        distances[0, : order.size] = np.sqrt(d2[order])
        found[0, : order.size] = ids[order]
        return distances, found

    def _store_distances(self, q: FloatArray, rows: npt.NDArray[np.int64]) -> FloatArray:
        """Squared float32 distances from each query to its candidate rows of the store
        (``q``: ``(n, dim)`` or ``(dim,)``; ``rows``: ``(n, c)`` or ``(c,)``, valid rows),
        computed by FAISS in place in the store: no gathered copy of the candidates.
        At a million faces this made a single search's re-rank ~0.05 ms faster than
        gathering the rows and computing the distances in numpy."""
        view = self._store.view()
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if rows.size and (int(rows.max()) >= view.shape[0] or int(rows.min()) < 0):
            raise IndexBackendError("a candidate row is outside the vector store")
        q = np.ascontiguousarray(q, dtype=np.float32)
        out = np.empty(rows.shape, dtype=np.float32)
        ptr = self._faiss.swig_ptr
        nx = 1 if q.ndim == 1 else q.shape[0]
        self._faiss.fvec_L2sqr_by_idx(
            ptr(out), ptr(q), ptr(view), ptr(rows), self._dim, nx, rows.size // nx
        )
        return out

    def _maybe_rebuild(self) -> None:
        """Start a build if the live count calls for another structure or tombstones pile up."""
        if self._builder is not None and self._builder.is_alive():
            return
        count = self.count()
        target = self._tuning.kind_for(count, self._kind)
        total = int(self._structure.ntotal)
        indexed = min(self._indexed, self._store.rows)
        dead = total - int(self._live[:indexed].sum())
        if target is self._kind and not (dead and dead > self._tuning.compact_ratio * total):
            return
        if self._tuning.background:
            self._cancel.clear()
            self._builder = threading.Thread(
                target=self._build, args=(target, True), name="facetrace-index-build", daemon=True
            )
            self._builder.start()
        else:
            self._build(target, in_background=False)

    def _build(self, kind: StructureKind, in_background: bool) -> None:
        """Build a ``kind`` structure over the live rows, catch up, and swap it in."""
        try:
            while True:
                restart = self._build_once(kind, in_background)
                if restart is None:
                    return
                kind = restart
        except Exception as exc:
            if not in_background:
                raise IndexBackendError(f"index build failed: {exc}") from exc
            log.exception("background index build failed")
            self._build_error = exc

    def _build_once(self, kind: StructureKind, in_background: bool) -> StructureKind | None:
        """One build attempt; returns another kind to build instead when the count moved."""
        with self._lock:
            snap = self._store.rows
            live_rows = np.flatnonzero(self._live[:snap]).astype(np.int64)
        log.info("building %s index over %d vectors", kind.value, live_rows.size)
        sample = None
        if kind is not StructureKind.FLAT:  # a graph's subspace, IVF centroids, codebooks
            rng = np.random.default_rng(live_rows.size)
            n_train = min(live_rows.size, self._tuning.train_size)
            sample = self._store.take(np.sort(rng.choice(live_rows, size=n_train, replace=False)))
        structure = new_structure(kind, self._dim, live_rows.size, self._tuning, sample)
        chunk = self._tuning.build_chunk
        while True:
            for start in range(0, live_rows.size, chunk):
                if in_background and self._cancel.is_set():
                    return None
                part = live_rows[start : start + chunk]
                add_rows(structure, self._store.take(part), part)
            with self._lock:
                if self._closed:
                    return None
                rows = self._store.rows
                extra = np.arange(snap, rows, dtype=np.int64)
                live_rows = extra[self._live[extra]]
                target = self._tuning.kind_for(self.count(), kind)
                if target is not kind:
                    return target  # the gallery grew (or shrank) past a threshold meanwhile
                if live_rows.size <= chunk:
                    if live_rows.size:
                        add_rows(structure, self._store.take(live_rows), live_rows)
                    self._structure, self._kind, self._indexed = structure, kind, rows
                    self._full_dim = search_dim(structure) == self._dim
                    self._params = None
                    log.info("swapped in %s index (%d vectors)", kind.value, structure.ntotal)
                    break
                snap = rows  # catch up on rows added meanwhile, outside the lock
        # Outside the lock: searches go on while the kernel moves the pages (a catch-up
        # add that reallocates meanwhile only costs that array its huge pages).
        self._advise_huge_pages(structure)
        return None

    def _compact_store(self, keep: npt.NDArray[np.int64]) -> None:
        """Copy live rows into a new store generation and renumber rows (lock held)."""
        old = self._store
        name = f"vectors.{uuid.uuid4().hex[:12]}.f32"
        path = None if self._dir is None else self._dir / name
        if path is not None:
            path.unlink(missing_ok=True)
        new = VectorStore(self._dim, path)
        new.claim()
        view = old.view()
        for start in range(0, keep.size, 65_536):
            new.append(np.asarray(view[keep[start : start + 65_536]]))
        renumber = np.full(old.rows, -1, dtype=np.int64)
        renumber[keep] = np.arange(keep.size, dtype=np.int64)
        self._row_ids = self._row_ids[keep].copy()
        self._live = np.ones(keep.size, dtype=bool)
        self._sorted_rows = renumber[self._sorted_rows]
        self._store, self._vectors_name = new, name
        self._structure = new_structure(StructureKind.FLAT, self._dim, 0, self._tuning)
        self._kind = StructureKind.FLAT
        self._full_dim = True
        self._indexed = 0
        self._params = None
        self._version += 1
        self._selector = None
        old.close()  # a file store's old file is deleted by the next save()

    def _load(self, path: Path) -> None:
        try:
            manifest = json.loads((path / MANIFEST).read_text())
            if manifest.get("format") != FORMAT_VERSION:
                raise IndexBackendError(f"{path}: unsupported index format {manifest['format']}")
            if manifest["dim"] != self._dim:
                raise IndexBackendError(
                    f"{path} holds {manifest['dim']}-D vectors, not {self._dim}"
                )
            rows = int(manifest["rows"])
            self._generation = int(manifest["generation"])
            self._indexed = int(manifest.get("indexed", rows))
            self._vectors_name = manifest["vectors"]
            self._store = VectorStore(self._dim, path / self._vectors_name, rows)
            with np.load(path / manifest["meta"]) as meta:
                self._row_ids = meta["row_ids"].astype(np.int64)
                self._live = meta["live"].astype(bool)
            self._structure = self._faiss.read_index(str(path / manifest["structure"]))
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise IndexBackendError(f"could not open index at {path}: {exc}") from exc
        self._kind = kind_of(self._structure)
        self._full_dim = search_dim(self._structure) == self._dim
        live_rows = np.flatnonzero(self._live)
        order = np.argsort(self._row_ids[live_rows], kind="stable")
        self._sorted_rows = live_rows[order].astype(np.int64)
        self._sorted_ids = self._row_ids[self._sorted_rows]
        with self._lock:
            self._maybe_rebuild()
            self._catch_up()
        self._advise_huge_pages(self._structure)  # after catch-up adds may have moved arrays


def _grow(arr: npt.NDArray[Any], size: int) -> npt.NDArray[Any]:
    """Return ``arr`` with room for ``size`` entries (amortised doubling)."""
    if arr.shape[0] >= size:
        return arr
    out = np.zeros(max(size, 2 * arr.shape[0], 1024), dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


def _fsync_replace(tmp: Path, final: Path) -> None:
    faults.point()  # written, not yet durable
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    faults.point()  # durable, not yet in place
    os.replace(tmp, final)
    faults.point()
