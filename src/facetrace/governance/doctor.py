"""The consistency doctor: do the store, the index, the thumbnails, the people, the jobs,
the governance state and the audit chain agree?

:func:`examine` runs every :class:`Check` and returns a :class:`DoctorReport`, one
:class:`Finding` per check with a count and a few examples. With ``repair=True`` it
fixes what the store (the source of truth) can fix and says what it cannot:

============================  ======================================================
check                         repair
============================  ======================================================
``missing_vectors``           the face's vector is added to the index from the store
``orphan_vectors``            the vector is removed from the index
``orphan_thumbnails``         the blob is deleted (a file overwritten and unlinked)
``missing_thumbnails``        one the home folder still holds (where thumbnails were
                              kept before ``blob_store``) is moved into the blob
                              store; else none (a photo's bytes are not kept)
``orphan_photos``             a photo with no sighting is purged with its faces
``takedown_leftovers``        a source blocked by an unfinished takedown, or a blocked
                              host, still holds sightings: they are purged
``opted_out_faces``           a stored face an opt-out template suppresses is purged
``unplaced_faces``            the face is placed in a person
``empty_people``              the person is deleted
``unfinished_jobs``           none: ``facetrace jobs resume ID`` finishes each
``audit_chain``               none: a broken chain is evidence, never rewritten
============================  ======================================================

Opening a gallery runs the cheap part (vectors, thumbnails, unplaced faces:
:meth:`facetrace.app.FaceTrace.reconcile`). Every run is an audited event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from facetrace.events import PLATFORM_ORG, DoctorRan
from facetrace.governance.access import Action, Actor, require
from facetrace.governance.audit import AuditLog
from facetrace.governance.gate import host_in, url_host
from facetrace.governance.purge import finish_purge
from facetrace.governance.repository import GovernanceStore
from facetrace.identity.people import assign_new
from facetrace.identity.repository import IdentityStore
from facetrace.store.blobs import FolderBlobs
from facetrace.store.repository import SourceStatus, translates_store_errors

if TYPE_CHECKING:
    from facetrace.app import FaceTrace

EXAMPLES = 5
"""Examples listed per finding."""


class Check(StrEnum):
    MISSING_VECTORS = "missing_vectors"
    ORPHAN_VECTORS = "orphan_vectors"
    ORPHAN_THUMBNAILS = "orphan_thumbnails"
    MISSING_THUMBNAILS = "missing_thumbnails"
    ORPHAN_PHOTOS = "orphan_photos"
    TAKEDOWN_LEFTOVERS = "takedown_leftovers"
    OPTED_OUT_FACES = "opted_out_faces"
    UNPLACED_FACES = "unplaced_faces"
    EMPTY_PEOPLE = "empty_people"
    UNFINISHED_JOBS = "unfinished_jobs"
    AUDIT_CHAIN = "audit_chain"


@dataclass(frozen=True, slots=True)
class Finding:
    """What one check found: ``count`` problems (0 = healthy), up to :data:`EXAMPLES`
    examples, whether it can be repaired, how many were, and what to do otherwise."""

    check: Check
    count: int
    examples: tuple[str, ...] = ()
    repairable: bool = True
    repaired: int = 0
    advice: str = ""

    @property
    def remaining(self) -> int:
        return max(self.count - self.repaired, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check.value,
            "count": self.count,
            "repaired": self.repaired,
            "remaining": self.remaining,
            "repairable": self.repairable,
            "examples": list(self.examples),
            "advice": self.advice,
        }


@dataclass(frozen=True, slots=True)
class DoctorReport:
    """Every check's finding; ``healthy`` when nothing remains unrepaired."""

    findings: tuple[Finding, ...]
    repair: bool
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return all(f.remaining == 0 for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "repair": self.repair,
            "findings": [f.to_dict() for f in self.findings],
        }


def _examples(items: Any) -> tuple[str, ...]:
    return tuple(str(i) for i in list(items)[:EXAMPLES])


@translates_store_errors
def examine(engine: FaceTrace, actor: Actor, *, repair: bool = False) -> DoctorReport:
    """Run every check (and, with ``repair``, fix what can be fixed); audited."""
    require(engine, actor, Action.DOCTOR)
    steps: list[Callable[[FaceTrace, bool], Finding]] = [
        _vectors_missing,
        _vectors_orphaned,
        _thumbnails_orphaned,
        _thumbnails_missing,
        _photos_orphaned,
        _takedown_leftovers,
        _opted_out_faces,
        _unplaced_faces,
        _empty_people,
        _unfinished_jobs,
        _audit_chain,
    ]
    findings = tuple(step(engine, repair) for step in steps)
    engine.track_event(
        DoctorRan(
            actor=actor.label,
            at=engine.clock(),
            repair=repair,
            found={f.check.value: f.count for f in findings if f.count},
            repaired={f.check.value: f.repaired for f in findings if f.repaired},
        )
    )
    return DoctorReport(findings, repair)


# --- the checks ----------------------------------------------------------------------


def _index_sets(engine: FaceTrace) -> tuple[np.ndarray, np.ndarray]:
    db = engine.store.face_ids(engine.analyzer.model_id)
    idx = engine.index.ids()
    return db, idx


def _vectors_missing(engine: FaceTrace, repair: bool) -> Finding:
    db, idx = _index_sets(engine)
    missing = np.setdiff1d(db, idx)
    repaired = 0
    if repair and missing.size:
        repaired = engine.index_from_store(missing)
        engine.index.save()
    return Finding(Check.MISSING_VECTORS, int(missing.size), _examples(missing), repaired=repaired)


def _vectors_orphaned(engine: FaceTrace, repair: bool) -> Finding:
    db, idx = _index_sets(engine)
    orphans = np.setdiff1d(idx, db)
    repaired = 0
    if repair and orphans.size:
        repaired = int(engine.index.remove(orphans))
        engine.index.save()
    return Finding(Check.ORPHAN_VECTORS, int(orphans.size), _examples(orphans), repaired=repaired)


def _thumbnails_orphaned(engine: FaceTrace, repair: bool) -> Finding:
    orphans = engine.orphan_thumbnails()
    repaired = engine.blobs.delete(orphans) if repair else 0
    return Finding(Check.ORPHAN_THUMBNAILS, len(orphans), _examples(orphans), repaired=repaired)


def _thumbnails_missing(engine: FaceTrace, repair: bool) -> Finding:
    missing = sorted(engine.store.thumbnails() - engine.blobs.names())
    # A gallery made before blob_store kept its thumbnails in the home folder (each node
    # its own): those are moved into the store chosen now (a folder elsewhere, or the
    # database), so every node reaches them.
    home = FolderBlobs(engine.home)
    movable = sorted(set(missing) & home.names()) if missing else []
    repaired = 0
    if repair:
        for name in movable:
            data = home.get(name)
            if data is not None:
                engine.blobs.put({name: data})
                home.delete([name])
                repaired += 1
    return Finding(
        Check.MISSING_THUMBNAILS,
        len(missing),
        _examples(missing),
        repairable=bool(movable),
        repaired=repaired,
        advice="photo bytes are not kept; re-ingest the source to make them again (run "
        "'doctor --repair' on a node whose home folder still holds some)"
        if len(missing) > len(movable)
        else "",
    )


def _photos_orphaned(engine: FaceTrace, repair: bool) -> Finding:
    repo = GovernanceStore(engine.store.engine)
    orphans = repo.photos_without_sightings()
    repaired = 0
    if repair and orphans:
        deleted = repo.delete_photos(orphans)
        finish_purge(engine, deleted)
        repaired = len(deleted.photo_ids)
    return Finding(Check.ORPHAN_PHOTOS, len(orphans), _examples(orphans), repaired=repaired)


def _takedown_leftovers(engine: FaceTrace, repair: bool) -> Finding:
    """Sightings a takedown should have removed: of a source blocked without a
    ``sources block`` of its own (a takedown blocks first, then deletes), or of a
    blocked host (hosts are blocked only by takedowns)."""
    repo = GovernanceStore(engine.store.engine)
    chosen = _blocked_by_hand(engine)
    leftover: list[int] = []
    names: list[str] = []
    for source in engine.store.list_sources():
        if source.status == SourceStatus.BLOCKED and (source.owner_org, source.name) not in chosen:
            ids = repo.sightings_of_source(source.id)
            if ids:
                leftover += ids
                names.append(f"source {source.name}: {len(ids)} sightings")
    for host in sorted(repo.blocked_hosts()):
        ids = [
            sid
            for sid, origin, page in repo.sightings_mentioning(host)
            if host_in(url_host(origin), host) or host_in(url_host(page), host)
        ]
        if ids:
            leftover += ids
            names.append(f"host {host}: {len(ids)} sightings")
    repaired = 0
    if repair and leftover:
        deleted = repo.delete_sightings(sorted(set(leftover)))
        finish_purge(engine, deleted)
        repaired = len(set(leftover))
    return Finding(
        Check.TAKEDOWN_LEFTOVERS, len(set(leftover)), _examples(names), repaired=repaired
    )


def _blocked_by_hand(engine: FaceTrace) -> set[tuple[int, str]]:
    """Sources, as ``(organisation, name)``, whose latest status change in their
    organisation's audit chain is a ``sources block`` (only a source's owner blocks it)."""
    latest: dict[tuple[int, str], str] = {}
    log = AuditLog(engine.store.engine)
    for org in GovernanceStore(engine.store.engine).audit_orgs():
        for entry in log.entries(org=org):
            if entry.kind == "source.status":
                key = (org, str(entry.payload.get("name")))
                latest[key] = str(entry.payload.get("status"))
            elif (
                entry.kind == "takedown.performed" and entry.payload.get("target_kind") == "source"
            ):
                latest[(org, str(entry.payload.get("target")))] = "taken down"
    return {key for key, status in latest.items() if status == SourceStatus.BLOCKED}


def _opted_out_faces(engine: FaceTrace, repair: bool) -> Finding:
    suppress = engine.opt_out_suppressor()
    found: list[int] = []
    if suppress is not None:
        dim = engine.analyzer.embedder.dim
        for ids, vecs in engine.store.iter_embeddings(engine.analyzer.model_id, dim):
            found += [int(i) for i in ids[suppress(vecs)]]
    repaired = 0
    if repair and found:
        deleted = GovernanceStore(engine.store.engine).delete_faces(found)
        finish_purge(engine, deleted)
        repaired = len(deleted.face_ids)
    return Finding(Check.OPTED_OUT_FACES, len(found), _examples(found), repaired=repaired)


def _unplaced_faces(engine: FaceTrace, repair: bool) -> Finding:
    pending = IdentityStore(engine.store.engine).unassigned(engine.analyzer.model_id)
    repaired = assign_new(engine) if repair and pending else 0
    return Finding(
        Check.UNPLACED_FACES,
        len(pending),
        _examples(f for f, _ in pending),
        repaired=min(repaired, len(pending)),
    )


def _empty_people(engine: FaceTrace, repair: bool) -> Finding:
    repo = IdentityStore(engine.store.engine)
    empty = repo.empty()
    repaired = repo.drop_empty() if repair and empty else 0
    return Finding(Check.EMPTY_PEOPLE, len(empty), _examples(empty), repaired=repaired)


def _unfinished_jobs(engine: FaceTrace, repair: bool) -> Finding:
    jobs = GovernanceStore(engine.store.engine).unfinished_jobs()
    return Finding(
        Check.UNFINISHED_JOBS,
        len(jobs),
        _examples(f"job {j} ({s})" for j, s in jobs),
        repairable=False,
        advice="finish each with 'facetrace jobs resume ID'" if jobs else "",
    )


def _audit_chain(engine: FaceTrace, repair: bool) -> Finding:
    log = AuditLog(engine.store.engine)
    problems = [
        problem if org == PLATFORM_ORG else f"organisation {org}: {problem}"
        for org in GovernanceStore(engine.store.engine).audit_orgs()
        for problem in log.verify(org=org).problems
    ]
    return Finding(
        Check.AUDIT_CHAIN,
        len(problems),
        _examples(problems),
        repairable=False,
        advice="the audit log is evidence and is never rewritten; compare it with an "
        "exported copy or an anchored head ('facetrace audit verify --anchor')"
        if problems
        else "",
    )
