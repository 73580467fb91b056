"""The ingest pipeline: tasks -> (workers) analysis -> one transaction per photo -> index.

Order of writes for one photo, chosen so that a process killed at any point
loses nothing acknowledged and leaves nothing half-written:

1. the photo, its sighting and its faces (with embeddings) are committed in one
   database transaction - this is the acknowledgement - with the faces' thumbnails
   (named by content hash; see :mod:`facetrace.store.blobs`): rows of that
   transaction when blobs live in the database, else files written (atomically)
   before it commits;
2. the vectors are added to the index in batches (:data:`VECTOR_BATCH_FACES` faces or
   :data:`VECTOR_BATCH_SECONDS`, whichever comes first, and at the end of the run): one
   round trip per batch, not per photo, which matters for a remote index (Milvus
   answers an insert in milliseconds but its duplicate check, a strongly consistent
   read, takes a fifth of a second). The embedded index is saved periodically.

After a crash, :meth:`facetrace.app.FaceTrace.reconcile` (run on open) adds
committed faces missing from the index, drops index entries with no face row,
and deletes thumbnails no face refers to. A re-run finds the committed photos
by sha256 and only adds sightings, so nothing is duplicated.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from facetrace.config import Settings
from facetrace.errors import FaceTraceError, SourceBlockedError
from facetrace.index.base import VectorIndex
from facetrace.ingest.executors import open_executor
from facetrace.ingest.tasks import (
    PhotoAnalysis,
    PhotoTask,
    Refused,
    analyze_task,
    task_bytes,
)
from facetrace.store.blobs import BlobStore, thumbnail_name
from facetrace.store.repository import NewFace, NewPhoto, PhotoWrite, SourceRecord, Store
from facetrace.types import IngestSummary, ItemError
from facetrace.vision.analyzer import FaceAnalyzer

INDEX_SAVE_SECONDS = 30.0
VECTOR_BATCH_FACES = 256
"""Faces whose vectors are added to the index in one call."""
VECTOR_BATCH_SECONDS = 2.0
"""The longest a committed face waits for its batch to be added to the index."""


@dataclass
class _PendingVectors:
    """Committed faces whose vectors are not yet in the index."""

    ids: list[int] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    since: float = 0.0

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        if not self.ids:
            self.since = time.monotonic()
        self.ids.extend(ids)
        self.vectors.extend(vectors)

    def due(self) -> bool:
        return len(self.ids) >= VECTOR_BATCH_FACES or (
            bool(self.ids) and time.monotonic() - self.since >= VECTOR_BATCH_SECONDS
        )

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(self.ids, dtype=np.int64)
        vectors = np.stack(self.vectors).astype(np.float32)
        self.ids, self.vectors = [], []
        return ids, vectors


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """What happened to one item, for progress reporting."""

    key: str
    status: str  # "added", "duplicate", "error", "refused"
    faces: int = 0
    error: str | None = None


@dataclass
class _Counts:
    seen: int = 0
    added: int = 0
    duplicates: int = 0
    faces: int = 0
    suppressed: int = 0
    errors: list[ItemError] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


Suppressor = Callable[[np.ndarray], np.ndarray]
"""Maps ``(n, dim)`` embeddings to an ``(n,)`` bool mask of faces to drop (opt-outs)."""


def default_workers(settings: Settings) -> int:
    """Worker processes to use: the setting, or one per CPU core."""
    return settings.workers or max(1, os.cpu_count() or 1)


class LiveSuppression(Protocol):
    """Opt-out suppression that follows opt-outs made while an ingest runs
    (:class:`facetrace.governance.suppression.LiveSuppression`)."""

    def committing(self) -> AbstractContextManager[bool]: ...

    def current(self) -> Suppressor | None: ...


class IngestPipeline:
    """Runs photo tasks for one source and writes what they find."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        index: VectorIndex,
        analyzer: FaceAnalyzer,
        home: Path,
        blobs: BlobStore,
        clock: Callable[[], datetime],
        suppression: LiveSuppression | None = None,
        gate: Callable[[PhotoTask], str | None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.index = index
        self.analyzer = analyzer
        self.home = home
        """Gallery folder."""
        self.blobs = blobs
        """Where thumbnails go (written with the faces, see :meth:`Store.add_photo`)."""
        self.clock = clock
        self.suppression = suppression
        """Opt-out suppression (None: nobody is suppressed, as in tests that bypass it)."""
        self.gate = gate
        """Governance gate: a refusal reason for a task (blocked host or source), or None."""
        self._vectors = _PendingVectors()

    def run(
        self,
        tasks: Iterable[PhotoTask | Refused],
        source: SourceRecord,
        *,
        workers: int | None = None,
        on_item: Callable[[ItemOutcome], None] | None = None,
        job_id: int | None = None,
        skip: frozenset[str] = frozenset(),
        cluster: str | None = None,
        cluster_nodes: int | None = None,
    ) -> IngestSummary:
        """Ingest every task; per-item errors are recorded, never raised.

        With ``job_id``, each item's outcome is recorded in the job so that a
        resumed job skips the items in ``skip`` (already done) without reading them.
        With ``cluster`` (``auto`` or ``ray://HOST:PORT``), analyses run on that Ray
        cluster instead of ``workers`` local processes (see :mod:`facetrace.ingest.cluster`),
        on its first ``cluster_nodes`` worker nodes if given.
        """
        started = time.perf_counter()
        counts = _Counts()
        n_workers = workers if workers is not None else default_workers(self.settings)
        last_save = time.monotonic()
        tasks = (t for t in tasks if t.key not in skip)

        def handle(outcome: ItemOutcome) -> None:
            nonlocal last_save
            if job_id is not None:
                self.store.record_job_item(
                    job_id, outcome.key, outcome.status, outcome.error, self.clock()
                )
            if on_item is not None:
                on_item(outcome)
            if self._vectors.due():
                self._add_vectors()
            if time.monotonic() - last_save > INDEX_SAVE_SECONDS:
                self._add_vectors()
                self.index.save()
                last_save = time.monotonic()

        try:
            analyses = self._analyses(
                tasks, source, counts, n_workers, handle, cluster, cluster_nodes
            )
            for task, data, analysis in analyses:
                outcome = self._commit(task, data, analysis, source, counts)
                handle(outcome)
        finally:
            try:
                self._add_vectors()
            finally:
                self.index.save()
        return IngestSummary(
            photos_seen=counts.seen,
            photos_added=counts.added,
            duplicates=counts.duplicates,
            faces_added=counts.faces,
            suppressed_faces=counts.suppressed,
            errors=tuple(counts.errors),
            seconds=time.perf_counter() - started,
            stage_seconds=dict(counts.timings),
        )

    # --- stages ------------------------------------------------------------

    def _prepare(
        self, task: PhotoTask | Refused, source: SourceRecord, counts: _Counts
    ) -> tuple[bytes, str] | ItemOutcome:
        """Read bytes and hash them; a known photo only gains a sighting."""
        try:
            return self._prepare_item(task, source, counts)
        except SourceBlockedError as exc:  # blocked by a takedown in another process
            return self._refused(task.key, str(exc), counts)

    def _refused(self, key: str, message: str, counts: _Counts) -> ItemOutcome:
        counts.errors.append(ItemError(key, message))
        return ItemOutcome(key, "refused", error=message)

    def _prepare_item(
        self, task: PhotoTask | Refused, source: SourceRecord, counts: _Counts
    ) -> tuple[bytes, str] | ItemOutcome:
        counts.seen += 1
        if isinstance(task, Refused):
            return self._error(task.key, task.error, source, counts, status="refused")
        if self.gate is not None:
            refusal = self.gate(task)
            if refusal is not None:  # audited by the engine; the URL is not stored
                counts.errors.append(ItemError(task.key, refusal))
                return ItemOutcome(task.key, "refused", error=refusal)
        try:
            data = task_bytes(task, self.settings.max_image_bytes)
        except FaceTraceError as exc:
            return self._error(task.key, str(exc), source, counts)
        sha = hashlib.sha256(data).hexdigest()
        photo_id = self.store.photo_id_by_sha(sha)
        if photo_id is not None:
            self.store.add_sighting(
                photo_id, source.id, task.origin, task.page_url, task.collected_at
            )
            counts.duplicates += 1
            return ItemOutcome(task.key, "duplicate")
        return data, sha

    def _analyses(
        self,
        tasks: Iterable[PhotoTask | Refused],
        source: SourceRecord,
        counts: _Counts,
        n_workers: int,
        handle: Callable[[ItemOutcome], None],
        cluster: str | None = None,
        cluster_nodes: int | None = None,
    ) -> Iterator[tuple[PhotoTask, bytes, PhotoAnalysis]]:
        if n_workers <= 1 and cluster is None:
            yield from self._analyse_here(tasks, source, counts, handle)
            return
        deferred: list[PhotoTask | Refused] = []
        with open_executor(self.settings, n_workers, cluster, cluster_nodes) as executor:
            pending: dict[Future[PhotoAnalysis], tuple[PhotoTask, bytes]] = {}
            in_flight_shas: set[str] = set()
            limit = executor.capacity
            for task in tasks:
                prepared = self._prepare(task, source, counts)
                if isinstance(prepared, ItemOutcome):
                    handle(prepared)
                    continue
                data, sha = prepared
                if sha in in_flight_shas:
                    # Same bytes already being analysed: prepared again once that one is
                    # stored (then it only adds a sighting).
                    counts.seen -= 1
                    deferred.append(task)
                    continue
                in_flight_shas.add(sha)
                assert isinstance(task, PhotoTask)
                pending[executor.submit(task, data)] = (task, data)
                while len(pending) >= limit:
                    yield from self._drain(pending, self.settings.analysis_stall_seconds)
            while pending:
                yield from self._drain(pending, self.settings.analysis_stall_seconds)
        # A twin whose first copy failed is analysed here rather than dropped.
        yield from self._analyse_here(deferred, source, counts, handle)

    def _analyse_here(
        self,
        tasks: Iterable[PhotoTask | Refused],
        source: SourceRecord,
        counts: _Counts,
        handle: Callable[[ItemOutcome], None],
    ) -> Iterator[tuple[PhotoTask, bytes, PhotoAnalysis]]:
        """Prepare and analyse tasks one by one in this process."""
        for task in tasks:
            prepared = self._prepare(task, source, counts)
            if isinstance(prepared, ItemOutcome):
                handle(prepared)
                continue
            data, _ = prepared
            assert isinstance(task, PhotoTask)
            yield task, data, analyze_task(task, self.analyzer, self.settings, data)

    @staticmethod
    def _drain(
        pending: dict[Future[PhotoAnalysis], tuple[PhotoTask, bytes]],
        stall_seconds: float,
    ) -> Iterator[tuple[PhotoTask, bytes, PhotoAnalysis]]:
        """Yield the analyses that are finished (waiting for at least one). When none
        comes back for ``stall_seconds`` (a worker or a cluster node stopped answering
        without being declared dead), every analysis in flight becomes its item's error,
        which ``facetrace jobs resume`` retries: a job never waits for ever."""
        done, _ = wait(list(pending), timeout=stall_seconds, return_when=FIRST_COMPLETED)
        if not done:
            message = (
                f"no analysis came back in {stall_seconds:g} s (a worker or node stopped "
                "answering); facetrace jobs resume retries it"
            )
            for fut in list(pending):
                fut.cancel()
                task, data = pending.pop(fut)
                yield task, data, PhotoAnalysis(key=task.key, error=message)
            return
        for fut in done:
            task, data = pending.pop(fut)
            try:
                analysis = fut.result()
            except Exception as exc:  # a worker died or raised: one item's error
                analysis = PhotoAnalysis(key=task.key, error=f"analysis failed: {exc}")
            yield task, data, analysis

    def _add_vectors(self) -> None:
        """Add the pending vectors to the index (their faces are committed)."""
        if not self._vectors.ids:
            return
        ids, vectors = self._vectors.take()
        self.index.add(ids, vectors)
        gone = np.setdiff1d(ids, np.fromiter(self.store.stored_face_ids(ids.tolist()), np.int64))
        if gone.size:
            # A takedown or opt-out in another process deleted these rows between our
            # commit and this add, after it had removed their (then absent) vectors.
            self.index.remove(gone)

    def _error(
        self,
        key: str,
        message: str,
        source: SourceRecord,
        counts: _Counts,
        status: str = "error",
    ) -> ItemOutcome:
        counts.errors.append(ItemError(key, message))
        self.store.record_error(source.id, key, message, self.clock())
        return ItemOutcome(key, status, error=message)

    def _commit(
        self,
        task: PhotoTask,
        data: bytes,
        analysis: PhotoAnalysis,
        source: SourceRecord,
        counts: _Counts,
    ) -> ItemOutcome:
        try:
            return self._commit_item(task, analysis, source, counts)
        except SourceBlockedError as exc:  # blocked by a takedown in another process
            return self._refused(task.key, str(exc), counts)

    def _commit_item(
        self,
        task: PhotoTask,
        analysis: PhotoAnalysis,
        source: SourceRecord,
        counts: _Counts,
    ) -> ItemOutcome:
        for stage, seconds in analysis.timings.items():
            counts.timings[stage] = counts.timings.get(stage, 0.0) + seconds
        if analysis.error is not None:
            return self._error(task.key, analysis.error, source, counts)
        if analysis.phash is not None and self.settings.near_duplicate_bits >= 0:
            twin = self.store.near_duplicate(analysis.phash, self.settings.near_duplicate_bits)
            if twin is not None:
                # A resized or re-encoded copy of a stored photo: one more place it was found.
                self.store.add_sighting(
                    twin, source.id, task.origin, task.page_url, task.collected_at
                )
                counts.duplicates += 1
                return ItemOutcome(task.key, "duplicate")
        if self.suppression is None:
            return self._store_faces(task, analysis, source, counts, None)
        # Checked and stored under the opt-outs' lock, against the templates as they are
        # now: an opt-out in another process either finds this photo or is found by it.
        with self.suppression.committing():
            return self._store_faces(task, analysis, source, counts, self.suppression.current())

    def _store_faces(
        self,
        task: PhotoTask,
        analysis: PhotoAnalysis,
        source: SourceRecord,
        counts: _Counts,
        suppressor: Suppressor | None,
    ) -> ItemOutcome:
        faces = list(analysis.faces)
        suppressed = 0
        if faces and suppressor is not None:
            drop = suppressor(np.stack([f.embedding for f in faces]))
            suppressed = int(drop.sum())
            faces = [f for f, d in zip(faces, drop, strict=True) if not d]
            if not faces:  # only opted-out people in it: the photo is not stored at all
                counts.suppressed += suppressed
                return ItemOutcome(task.key, "suppressed")
        new_faces = []
        thumbnails: dict[str, bytes] = {}
        for i, face in enumerate(faces):
            thumb = thumbnail_name(analysis.sha256, i) if face.thumbnail else None
            if thumb is not None:
                thumbnails[thumb] = face.thumbnail
            new_faces.append(
                NewFace(
                    bbox=face.bbox,
                    confidence=face.confidence,
                    quality=face.quality,
                    landmarks=face.landmarks,
                    embedding=face.embedding,
                    thumbnail=thumb,
                )
            )
        write = self._store_photo(task, analysis, source, new_faces, thumbnails)
        if not write.created:
            counts.duplicates += 1
            return ItemOutcome(task.key, "duplicate")
        if write.face_ids:
            self._vectors.add(list(write.face_ids), np.stack([f.embedding for f in new_faces]))
        counts.added += 1
        counts.faces += len(write.face_ids)
        counts.suppressed += suppressed
        return ItemOutcome(task.key, "added", faces=len(write.face_ids))

    def _store_photo(
        self,
        task: PhotoTask,
        analysis: PhotoAnalysis,
        source: SourceRecord,
        new_faces: list[NewFace],
        thumbnails: dict[str, bytes],
    ) -> PhotoWrite:
        """Commit the photo and its faces; their thumbnails are written in the same
        transaction (rows of it, or files written before it commits), and only when
        the photo is new and its source still active."""
        return self.store.add_photo(
            NewPhoto(
                sha256=analysis.sha256,
                width=analysis.width,
                height=analysis.height,
                format=analysis.format,
                byte_size=analysis.byte_size,
                phash=analysis.phash,
            ),
            new_faces,
            model_id=self.analyzer.model_id,
            source_id=source.id,
            origin=task.origin,
            page_url=task.page_url,
            collected_at=task.collected_at,
            now=self.clock(),
            with_faces=lambda conn: self.blobs.put(thumbnails, conn),
        )
