"""FaceTrace: the one engine object the CLI (and the API) call.

It wires the metadata store, the vector index, the face analyzer and the event
sink from :class:`~facetrace.config.Settings`, keeps them consistent, and offers
the verbs: register sources, ingest, search, verify, stats.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from facetrace.config import Settings
from facetrace.errors import (
    AccessDeniedError,
    FaceTraceError,
    IndexBusyError,
    ModelMismatchError,
    NotFoundError,
    SourceBlockedError,
    StorageFullError,
    UnknownSourceError,
    UsageError,
    is_storage_full,
)
from facetrace.evaluation.calibration import Calibration, decision_threshold, load_calibration
from facetrace.events import (
    PLATFORM_ORG,
    Event,
    EventSink,
    FieldChange,
    IngestCompleted,
    IngestRefused,
    SearchPerformed,
    SourceRegistered,
    SourceStatusChanged,
    SourceUpdated,
    VerifyPerformed,
)
from facetrace.governance.audit import AuditLog
from facetrace.governance.gate import IngestGate
from facetrace.governance.suppression import LiveSuppression, suppressor
from facetrace.identity.people import assign_new, group_by_person
from facetrace.identity.repository import IdentityStore
from facetrace.index.base import VectorIndex
from facetrace.ingest.collect import InputKind, collect, input_kind
from facetrace.ingest.fetch.policy import SourcePolicy
from facetrace.ingest.pipeline import IngestPipeline, ItemOutcome
from facetrace.ingest.tasks import PhotoTask, Refused
from facetrace.search import rank_matches
from facetrace.store.blobs import BlobStore, open_blobs
from facetrace.store.repository import JobStatus, SourceRecord, SourceStatus, Store, Visibility
from facetrace.types import IngestSummary, SearchResult, Stats, VerifyResult
from facetrace.vision.analyzer import FaceAnalyzer, build_analyzer
from facetrace.vision.imaging import DecodedImage, decode_image, read_image_bytes

Clock = Callable[[], datetime]

WRITERS_LOCK = "writers"
"""Held shared by every ingest and purge while it writes, across processes and nodes
(a database lock, released if the process dies); opening a gallery repairs only when it
can take it alone, so it never mistakes another node's work in flight for leftovers."""

SOURCE_KINDS = ("folder", "url-list", "warc", "web")

#: Keys a source's stored policy may hold besides :class:`SourcePolicy`'s fields.
SOURCE_SETTINGS = ("retention_days",)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ProbePhoto:
    """A probe photo, decoded and analysed: its SHA-256 and each face's box, quality and
    descriptor. Analysing needs no engine state, so it may run outside the engine's lock
    and on several threads at once (dlib and ONNX Runtime release the GIL)."""

    sha256: str
    faces: tuple[tuple[Any, float, np.ndarray], ...]


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What :meth:`FaceTrace.reconcile` repaired."""

    added_to_index: int
    removed_from_index: int
    thumbnails_removed: int


def index_name(model_id: str) -> str:
    """File-safe index name for a model: one index per embedding model."""
    return "faces_" + re.sub(r"[^A-Za-z0-9_]+", "_", model_id)


class FaceTrace:
    """The engine. Build with :meth:`open`; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        index: VectorIndex,
        analyzer: FaceAnalyzer,
        clock: Clock = utc_now,
        events: EventSink | None = None,
        blobs: BlobStore | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.index = index
        self.analyzer = analyzer
        self.clock = clock
        self.events: EventSink = events if events is not None else AuditLog(store.engine)
        self.home = settings.home
        self.blobs: BlobStore = blobs if blobs is not None else open_blobs(settings, store.engine)
        """Where thumbnails (faces name them) and calibration tables live
        (``settings.blob_store``)."""

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        analyzer: FaceAnalyzer | None = None,
        clock: Clock = utc_now,
        reconcile: bool = True,
    ) -> FaceTrace:
        """Open (creating if needed) the gallery in ``settings.home`` and repair it."""
        from facetrace.index.factory import open_index

        settings.home.mkdir(parents=True, exist_ok=True)
        analyzer = analyzer if analyzer is not None else build_analyzer(settings)
        store = Store.open(settings.resolved_database_url)
        others = [m for m in store.model_ids() if m != analyzer.model_id]
        if others:
            store.close()
            raise ModelMismatchError(
                f"this gallery holds embeddings of model {others[0]!r}, but the configured "
                f"model is {analyzer.model_id!r}; use the matching embedder or a new home"
            )
        index = open_index(settings, analyzer.embedder.dim, index_name(analyzer.model_id))
        engine = cls(settings, store=store, index=index, analyzer=analyzer, clock=clock)
        if reconcile:
            engine.reconcile()
        return engine

    def close(self) -> None:
        self.index.close()
        self.store.close()

    def __enter__(self) -> FaceTrace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def writing(self) -> contextlib.AbstractContextManager[bool]:
        """Held while this process ingests or purges (shared with other writers), so no
        process opening the gallery meanwhile repairs this work in flight."""
        return self.store.shared(WRITERS_LOCK)

    def track_event(self, event: Event) -> None:
        """The one path by which auditable events are recorded."""
        self.events.track(event)

    # --- calibration -------------------------------------------------------

    @functools.cached_property
    def calibration(self) -> Calibration | None:
        """The active model's distance -> false-match-rate table, or None if it has none."""
        return load_calibration(self.analyzer.model_id, self.home, self.blobs)

    @property
    def match_threshold(self) -> float:
        """Decision distance: ``settings.match_threshold`` if set, else the calibrated
        distance at ``settings.match_fmr``. Raises ConfigError if neither exists."""
        return decision_threshold(self.settings, self.calibration)

    def opt_out_suppressor(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """Who opted out, for the model's faces (None when nobody did): faces it flags are
        not stored at ingest nor returned by search."""
        model = self.analyzer.embedder
        return suppressor(self.store.engine, self.settings, model.model_id, model.dim)

    def _worst_group_rate(self) -> Callable[[float], float] | None:
        """Distance -> same-group FMR of the worst-measured demographic group, if measured."""
        curve = self.calibration.worst_group if self.calibration else None
        return curve.false_match_rate if curve else None

    # --- consistency -------------------------------------------------------

    def orphan_thumbnails(self) -> list[str]:
        """The names of the stored blobs that no stored face refers to, sorted (listed
        before the references are read, so a blob committed meanwhile is not one)."""
        stored = self.blobs.names()
        return sorted(stored - self.store.thumbnails())

    def _unplaced(self) -> bool:
        repo = IdentityStore(self.store.engine)
        return bool(repo.unassigned(self.analyzer.model_id)) or bool(repo.empty())

    def index_from_store(self, face_ids: np.ndarray) -> int:
        """Add the stored vectors of ``(n,)`` int64 ``face_ids`` to the index (not saved);
        returns how many were added (ids with no face row are skipped)."""
        dim = self.analyzer.embedder.dim
        added = 0
        for start in range(0, face_ids.size, 10_000):
            embs = self.store.embeddings([int(i) for i in face_ids[start : start + 10_000]], dim)
            ids = np.asarray(list(embs), dtype=np.int64)
            if ids.size:
                self.index.add(ids, np.stack([embs[int(i)] for i in ids]))
                added += int(ids.size)
        return added

    def reconcile(self) -> ReconcileReport:
        """Make the index and thumbnails agree with the store (the source of truth).

        Adds committed faces missing from the index, removes index entries with
        no face row, deletes thumbnails (blobs) no face refers to, and places faces in
        people. While another process writes the embedded index (an ingest), what
        looks out of step is its work in flight, and nothing is touched.
        """
        with self.store.try_exclusive(WRITERS_LOCK) as alone:
            if not alone:
                # Another process (here or on another node) is ingesting or purging: what
                # looks missing or orphaned may be its work in flight. It finishes it; the
                # next open after a crash repairs what the crash left.
                return ReconcileReport(0, 0, 0)
            return self._reconcile()

    def _reconcile(self) -> ReconcileReport:
        model_id = self.analyzer.model_id
        db_ids = self.store.face_ids(model_id)
        idx_ids = self.index.ids()
        orphans = np.setdiff1d(idx_ids, db_ids, assume_unique=True)
        missing = np.setdiff1d(db_ids, idx_ids, assume_unique=True)
        stray = self.orphan_thumbnails()
        if not (orphans.size or missing.size or stray or self._unplaced()):
            return ReconcileReport(0, 0, 0)
        try:
            claim = getattr(self.index, "claim_writer", None)
            if callable(claim):
                claim()  # the repairs below are the writer's to make
        except IndexBusyError:
            # Another process is ingesting or purging: what looks missing or orphaned
            # is its work in flight. It finishes it; the next open repairs a crash.
            return ReconcileReport(0, 0, 0)
        removed = self.index.remove(orphans) if orphans.size else 0
        added = self.index_from_store(missing)
        # Again, now that no one else writes.
        thumbs_removed = self.blobs.delete(self.orphan_thumbnails())
        if removed or added:
            try:
                self.index.save()
            except FaceTraceError as exc:
                # A full disk: the index in memory agrees with the store and serves;
                # the next save (or this repair at the next open) persists it.
                if not is_storage_full(exc):
                    raise
        assign_new(self)  # faces an interrupted ingest stored but did not group
        IdentityStore(self.store.engine).drop_empty()  # people an interrupted purge emptied
        return ReconcileReport(added, removed, thumbs_removed)

    # --- sources -----------------------------------------------------------

    def add_source(
        self,
        name: str,
        *,
        lawful_basis: str,
        kind: str = "folder",
        jurisdiction: str | None = None,
        policy: dict[str, Any] | None = None,
        actor: str = "local",
        org: int = PLATFORM_ORG,
        visibility: str = Visibility.PRIVATE,
    ) -> SourceRecord:
        """Register a source of organisation ``org`` with its lawful basis; nothing is
        collected without one. ``visibility``: who sees what it collects (``private``:
        ``org`` alone; ``shared``: every organisation)."""
        name = name.strip()
        if not name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}", name):
            raise UsageError(
                "a source name is 1-200 letters, digits, '.', '_', ':' or '-', "
                "starting with a letter or digit"
            )
        if not lawful_basis.strip():
            raise UsageError("a source needs a lawful basis (--basis)")
        if kind not in SOURCE_KINDS:
            raise UsageError(f"source kind must be one of {', '.join(SOURCE_KINDS)}")
        if visibility not in set(Visibility):
            raise UsageError("a source's visibility is 'private' or 'shared'")
        record = self.store.add_source(
            name,
            kind=kind,
            lawful_basis=lawful_basis.strip(),
            jurisdiction=jurisdiction,
            policy=self._checked_source_policy(policy or {}),
            now=self.clock(),
            owner_org=org,
            visibility=visibility,
        )
        self.track_event(
            SourceRegistered(
                actor=actor,
                at=self.clock(),
                org=org,
                name=name,
                source_kind=kind,
                lawful_basis=record.lawful_basis,
                jurisdiction=jurisdiction,
                visibility=record.visibility,
            )
        )
        return record

    def owned_source(self, name: str, org: int) -> SourceRecord:
        """Organisation ``org``'s own source ``name``, to change. A shared source of
        another organisation is refused; a private one is not found."""
        record = self.store.get_source(name, org)
        if record is None:
            raise UnknownSourceError(f"source {name!r} is not registered")
        if record.owner_org != org:
            raise AccessDeniedError(
                f"access denied: source {name!r} is shared by another organisation; "
                "only its owner changes it"
            )
        return record

    def set_source_status(
        self, name: str, status: str, *, actor: str = "local", org: int = PLATFORM_ORG
    ) -> SourceRecord:
        """Set the status (``active`` or ``blocked``) of organisation ``org``'s source; a
        blocked one collects nothing."""
        if status not in set(SourceStatus):
            raise UsageError("a source's status is 'active' or 'blocked'")
        record = self.owned_source(name, org)
        self.store.set_source_status(record.id, status)
        self.track_event(
            SourceStatusChanged(actor=actor, at=self.clock(), org=org, name=name, status=status)
        )
        return replace(record, status=status)

    def update_source(
        self,
        name: str,
        *,
        lawful_basis: str | None = None,
        jurisdiction: str | None = None,
        policy_changes: dict[str, Any] | None = None,
        actor: str = "local",
        org: int = PLATFORM_ORG,
    ) -> SourceRecord:
        """Change the given settings of organisation ``org``'s source and keep the others.

        ``None`` leaves a setting as it is; ``jurisdiction=""`` clears it. In
        ``policy_changes`` (keys: :class:`SourcePolicy` fields and ``retention_days``)
        a value of ``None`` removes the key, so the default applies again. The
        result is validated as a whole before anything is written, and the change
        is audited (:class:`SourceUpdated`) with each setting's old and new value.
        Returns the updated record; raises UnknownSourceError or UsageError.
        """
        if lawful_basis is None and jurisdiction is None and not policy_changes:
            raise UsageError("nothing to change: give at least one setting")
        record = self.owned_source(name, org)
        basis = record.lawful_basis if lawful_basis is None else lawful_basis.strip()
        if not basis:
            raise UsageError("a source needs a lawful basis (--basis)")
        where = record.jurisdiction if jurisdiction is None else (jurisdiction.strip() or None)
        stored = dict(record.policy)
        for key, value in (policy_changes or {}).items():
            if value is None:
                stored.pop(key, None)
            else:
                stored[key] = value
        stored = self._checked_source_policy(stored)
        changes = {
            key: FieldChange(old=old, new=new)
            for key, old, new in [
                ("lawful_basis", record.lawful_basis, basis),
                ("jurisdiction", record.jurisdiction, where),
                *(
                    (k, record.policy.get(k), stored.get(k))
                    for k in sorted(set(record.policy) | set(stored))
                ),
            ]
            if old != new
        }
        if not changes:
            return record
        updated = self.store.update_source(
            record.id, lawful_basis=basis, jurisdiction=where, policy=stored
        )
        if updated is None:
            raise UnknownSourceError(f"source {name!r} is not registered")
        self.track_event(
            SourceUpdated(actor=actor, at=self.clock(), org=org, name=name, changes=changes)
        )
        return updated

    @staticmethod
    def _checked_source_policy(stored: dict[str, Any]) -> dict[str, Any]:
        """``stored`` validated (UsageError naming the bad setting) and in stored form."""
        unknown = set(stored) - SourcePolicy.field_names() - set(SOURCE_SETTINGS)
        if unknown:
            raise UsageError(f"unknown source policy settings: {', '.join(sorted(unknown))}")
        days = stored.get("retention_days")
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= 365_000
        ):
            raise UsageError(
                f"retention_days must be a number of days in (0, 365000], got {days!r}"
            )
        return SourcePolicy.validate(stored)

    def source(self, name: str, org: int = PLATFORM_ORG) -> SourceRecord:
        """Organisation ``org``'s own source ``name``, usable for collection (only a
        source's owner collects into it)."""
        record = self.store.get_source(name, org, owned=True)
        if record is None:
            raise UnknownSourceError(
                f"source {name!r} is not registered; register it first with "
                f"'facetrace sources add {name} --basis \"<lawful basis>\"'"
            )
        if record.status != SourceStatus.ACTIVE:
            raise SourceBlockedError(f"source {name!r} is {record.status}; nothing is collected")
        return record

    # --- ingest ------------------------------------------------------------

    def ingest_tasks(
        self,
        tasks: Iterable[PhotoTask | Refused],
        *,
        source: str,
        workers: int | None = None,
        on_item: Callable[[ItemOutcome], None] | None = None,
        actor: str = "local",
        org: int = PLATFORM_ORG,
        job_id: int | None = None,
        skip: frozenset[str] = frozenset(),
        cluster: str | None = None,
        cluster_nodes: int | None = None,
    ) -> IngestSummary:
        """Ingest photo tasks into ``org``'s ``source``; per-item errors are in the summary.
        With ``cluster`` (``auto`` or ``ray://HOST:PORT``) the analyses run on a Ray cluster,
        on its first ``cluster_nodes`` worker nodes if given (for ``bench ingest``)."""
        record = self.source(source, org)
        gate = IngestGate(self.store, record)
        pipeline = IngestPipeline(
            settings=self.settings,
            store=self.store,
            index=self.index,
            analyzer=self.analyzer,
            home=self.home,
            blobs=self.blobs,
            clock=self.clock,
            suppression=LiveSuppression(
                self.store, self.settings, self.analyzer.model_id, self.analyzer.embedder.dim
            ),
            gate=gate,
        )
        with self.writing():
            summary = pipeline.run(
                tasks,
                record,
                workers=workers,
                on_item=on_item,
                job_id=job_id,
                skip=skip,
                cluster=cluster,
                cluster_nodes=cluster_nodes,
            )
        assign_new(self)
        for host, items in sorted(gate.refused.items()):
            self.track_event(
                IngestRefused(
                    actor=actor, at=self.clock(), org=org, source=source, host=host, items=items
                )
            )
        self.track_event(
            IngestCompleted(
                actor=actor,
                at=self.clock(),
                org=org,
                source=source,
                photos_seen=summary.photos_seen,
                photos_added=summary.photos_added,
                duplicates=summary.duplicates,
                faces_added=summary.faces_added,
                errors=len(summary.errors),
            )
        )
        return summary

    def ingest(
        self,
        paths: Sequence[Path],
        *,
        source: str,
        workers: int | None = None,
        on_item: Callable[[ItemOutcome], None] | None = None,
        actor: str = "local",
        org: int = PLATFORM_ORG,
        cluster: str | None = None,
        cluster_nodes: int | None = None,
    ) -> IngestSummary:
        """Ingest photos, folders (recursively), URL lists or WARC archives into ``org``'s
        ``source`` (analysed on the Ray cluster ``cluster``, if given: on its first
        ``cluster_nodes`` worker nodes, if given).

        The run is recorded as a job; if it is interrupted, :meth:`resume_job`
        finishes it without redoing the items already done.
        """
        record = self.source(source, org)
        kind = input_kind(paths)
        spec = {"kind": kind.value, "paths": [str(Path(p).resolve()) for p in paths]}
        job_id = self.store.create_job(record.id, kind.value, spec, self.clock())
        return self._run_job(
            job_id,
            kind,
            paths,
            record,
            workers,
            on_item,
            actor,
            org,
            frozenset(),
            cluster,
            cluster_nodes,
        )

    def resume_job(
        self,
        job_id: int,
        *,
        workers: int | None = None,
        on_item: Callable[[ItemOutcome], None] | None = None,
        actor: str = "local",
        org: int = PLATFORM_ORG,
        cluster: str | None = None,
        paths: Sequence[Path] | None = None,
    ) -> IngestSummary:
        """Finish an interrupted ingest job of ``org``'s, or retry the items a finished
        one could not store (an analysis that never came back, a file unreadable then):
        items already done are skipped unread. Another organisation's job is not found.

        ``paths``: the job's inputs where this machine holds them, when they are not
        where the machine that started the job had them (a URL list a task wrote)."""
        job = self.store.job(job_id)
        if job is None or job.owner_org != org:
            raise NotFoundError(f"no ingest job {job_id}")
        if job.status == JobStatus.COMPLETED and not job.item_counts.get("error"):
            raise UsageError(f"job {job_id} already completed, with no item errors to retry")
        record = self.source(job.source, org)
        paths = list(paths) if paths is not None else [Path(p) for p in job.spec["paths"]]
        skip = frozenset(self.store.job_done_keys(job_id))
        kind = InputKind(job.spec["kind"])
        self.store.set_job_status(job_id, JobStatus.RUNNING, self.clock())
        return self._run_job(
            job_id, kind, paths, record, workers, on_item, actor, org, skip, cluster
        )

    def _run_job(
        self,
        job_id: int,
        kind: InputKind,
        paths: Sequence[Path],
        record: SourceRecord,
        workers: int | None,
        on_item: Callable[[ItemOutcome], None] | None,
        actor: str,
        org: int,
        skip: frozenset[str],
        cluster: str | None,
        cluster_nodes: int | None = None,
    ) -> IngestSummary:
        policy = SourcePolicy.from_source(record.policy)
        tasks = collect(
            kind, paths, policy=policy, settings=self.settings, clock=self.clock, skip=skip
        )
        try:
            summary = self.ingest_tasks(
                tasks,
                source=record.name,
                workers=workers,
                on_item=on_item,
                actor=actor,
                org=org,
                job_id=job_id,
                skip=skip,
                cluster=cluster,
                cluster_nodes=cluster_nodes,
            )
        except BaseException as exc:
            # A full disk may refuse this too; a resume accepts a job left "running".
            with contextlib.suppress(Exception):
                self.store.set_job_status(job_id, JobStatus.INTERRUPTED, self.clock())
            if is_storage_full(exc):
                raise StorageFullError(
                    f"no space left on the disk holding {self.home}; the photos stored so far "
                    f"are kept. Free space, then run 'facetrace jobs resume {job_id}'"
                ) from exc
            raise
        summary = replace(summary, job_id=job_id)
        self.store.set_job_status(job_id, JobStatus.COMPLETED, self.clock(), summary.to_dict())
        return summary

    # --- search ------------------------------------------------------------

    def _decode(self, photo: Path | bytes) -> DecodedImage:
        data = (
            photo
            if isinstance(photo, bytes)
            else read_image_bytes(Path(photo), self.settings.max_image_bytes)
        )
        return decode_image(
            data,
            max_bytes=self.settings.max_image_bytes,
            max_pixels=self.settings.max_image_pixels,
        )

    def read_probe(self, photo: Path | bytes) -> ProbePhoto:
        """Decode ``photo`` and find, align and describe every face in it."""
        image = self._decode(photo)
        faces = self.analyzer.analyze(image.pixels, with_thumbnails=False)
        return ProbePhoto(image.sha256, tuple((f.bbox, f.quality, f.embedding) for f in faces))

    def search(
        self,
        photo: Path | bytes | ProbePhoto,
        *,
        case_id: str,
        reason: str,
        top_k: int | None = None,
        actor: str = "local",
        org: int = PLATFORM_ORG,
    ) -> SearchResult:
        """Search every face of ``photo`` among the faces organisation ``org`` sees (its
        own sources' and the shared ones'); matches are ranked nearest first, and the
        gallery size behind each expected number of false matches is what ``org`` sees.

        Every search needs a case ID and a reason; it is recorded in ``org``'s audit
        chain before the results are returned.
        """
        if not case_id or not case_id.strip():
            raise UsageError("every search needs a case ID (--case)")
        if not reason or not reason.strip():
            raise UsageError("every search needs a reason (--reason)")
        k = top_k or self.settings.top_k
        if k < 1:
            raise UsageError("top-k must be at least 1")
        probe = photo if isinstance(photo, ProbePhoto) else self.read_probe(photo)
        probes = list(probe.faces)
        restricted = self.store.hides_sources_from(org)
        gallery = self.store.count_visible_faces(org) if restricted else self.index.count()
        results = rank_matches(
            index=self.index,
            store=self.store,
            locate=self.blobs.locate,
            probes=probes,
            top_k=k,
            threshold=self.match_threshold,
            false_match_rate=self.calibration.false_match_rate if self.calibration else None,
            worst_group_false_match_rate=self._worst_group_rate(),
            exclude=self.opt_out_suppressor(),
            visible_to_org=org if restricted else None,
            gallery_size=gallery,
        )
        if org == PLATFORM_ORG:  # people span every organisation: the platform's alone
            results = group_by_person(self, results)
        result = SearchResult(faces=results, gallery_size=gallery, probe_sha256=probe.sha256)
        self.track_event(
            SearchPerformed(
                actor=actor,
                at=self.clock(),
                org=org,
                case_id=case_id.strip(),
                reason=reason.strip(),
                probe_sha256=probe.sha256,
                gallery_size=result.gallery_size,
                probe_faces=len(results),
                results=[(m.face_id, round(m.distance, 6)) for f in results for m in f.matches],
            )
        )
        return result

    def verify(
        self,
        photo_a: Path | bytes,
        photo_b: Path | bytes,
        *,
        actor: str = "local",
        org: int = PLATFORM_ORG,
    ) -> VerifyResult:
        """Compare the largest face of each photo (1:1)."""
        embeddings = []
        shas = []
        for label, photo in (("first", photo_a), ("second", photo_b)):
            image = self._decode(photo)
            faces = self.analyzer.embed_image(image.pixels)
            if faces.shape[0] == 0:
                raise UsageError(f"no face found in the {label} photo")
            embeddings.append(faces[0])
            shas.append(image.sha256)
        distance = float(np.linalg.norm(embeddings[0] - embeddings[1]))
        threshold = self.match_threshold
        result = VerifyResult(
            same_person=distance < threshold,
            distance=distance,
            threshold=threshold,
            false_match_rate=(
                self.calibration.false_match_rate(distance) if self.calibration else None
            ),
            worst_group_false_match_rate=(
                worst(distance) if (worst := self._worst_group_rate()) else None
            ),
        )
        self.track_event(
            VerifyPerformed(
                actor=actor,
                at=self.clock(),
                org=org,
                probe_sha256=shas[0],
                other_sha256=shas[1],
                distance=distance,
                same_person=result.same_person,
            )
        )
        return result

    def stats(self, org: int | None = None) -> Stats:
        """Sizes of the gallery, or of what organisation ``org`` sees."""
        if org is not None and self.store.hides_sources_from(org):
            return self.store.visible_stats(org)
        return self.store.stats(indexed=self.index.count())
