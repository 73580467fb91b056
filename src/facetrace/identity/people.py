"""People: the operations on identities, each checked and audited once, under every face.

- :func:`assign_new` places every face that has no identity yet, one at a time, as it is
  ingested: a face joins the identity whose faces it is closest to on average (root mean
  squared distance, over the identity's faces) when that is under the clustering
  threshold and at least ``cluster_votes`` of its nearest faces there agree; otherwise it
  starts an identity. That identity then merges with a nearby one when the two pass the
  same test as groups (a new face can bridge two parts of one person). No full recompute.
- :func:`recluster` groups every face again (:func:`facetrace.identity.cluster.average_linkage`)
  and keeps every human decision: pinned faces stay, pinned identities never join each
  other, rejected faces never return.
- :func:`merge`, :func:`split`, :func:`name` and :func:`reject` are the human corrections;
  each pins the faces it touches so later ingests and reclusters leave them be.

The threshold is read from the model's calibration (``settings.cluster_fmr``), not fixed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from facetrace.errors import ConfigError, NotFoundError, UsageError
from facetrace.events import (
    FacesRejected,
    PeopleMerged,
    PeopleReclustered,
    PersonNamed,
    PersonSplit,
)
from facetrace.governance.access import Action, Actor, require
from facetrace.identity.cluster import (
    NO_PIN,
    Constraints,
    average_linkage,
    choose_identity,
    choose_merge,
)
from facetrace.identity.repository import IdentityStore, PersonSummary
from facetrace.index.base import NO_RESULT
from facetrace.types import Match, PersonHit, ProbeFace

if TYPE_CHECKING:
    from facetrace.app import FaceTrace

MEMBER_SAMPLE = 512
"""Faces of an identity compared with a newcomer (the oldest; enough for a mean)."""


def cluster_threshold(engine: FaceTrace) -> float:
    """The clustering distance: ``settings.cluster_threshold``, else the calibrated
    distance at ``settings.cluster_fmr`` (all impostor pairs)."""
    settings = engine.settings
    if settings.cluster_threshold is not None:
        return settings.cluster_threshold
    calibration = engine.calibration
    if calibration is None:
        raise ConfigError(
            f"model {engine.analyzer.model_id!r} has no calibration, so faces cannot be "
            "grouped into people; calibrate it or set FACETRACE_CLUSTER_THRESHOLD"
        )
    return calibration.threshold_at(settings.cluster_fmr)


def _can_cluster(engine: FaceTrace) -> bool:
    """Whether a grouping distance exists: set, or resolved by the model's calibration
    (a table from too few impostor pairs cannot resolve ``cluster_fmr``)."""
    if engine.settings.cluster_threshold is not None:
        return True
    calibration = engine.calibration
    return calibration is not None and calibration.min_rate <= engine.settings.cluster_fmr


def assign_new(engine: FaceTrace, neighbours: int = 30) -> int:
    """Give every face without an identity one (see the module docstring); returns how
    many faces were placed. Safe to rerun: an interrupted run leaves faces unplaced,
    and the next one (each ingest, and every open of the gallery) places them. Without
    a grouping distance (a model with no usable calibration) faces wait unplaced, and
    ``people`` commands say why."""
    if not _can_cluster(engine):
        return 0
    repo = IdentityStore(engine.store.engine)
    if not repo.unassigned(engine.analyzer.model_id):
        return 0
    # One process places faces at a time: two nodes placing the same new face (or two
    # faces of one new person) at once would each make a person for it.
    with engine.store.exclusive("people"):
        return _assign(engine, repo, neighbours)


def _assign(engine: FaceTrace, repo: IdentityStore, neighbours: int) -> int:
    pending = repo.unassigned(engine.analyzer.model_id)
    if not pending:
        return 0
    threshold = cluster_threshold(engine)
    votes = engine.settings.cluster_votes
    dim = engine.analyzer.embedder.dim
    k = max(1, min(neighbours + 1, engine.index.count()))
    for start in range(0, len(pending), 256):
        chunk = pending[start : start + 256]
        embs = engine.store.embeddings([f for f, _ in chunk], dim)
        present = [(f, p) for f, p in chunk if f in embs]
        if not present:
            continue
        queries = np.stack([embs[f] for f, _ in present]).astype(np.float32)
        dists, ids = engine.index.search(queries, k)
        for (face_id, photo_id), row_d, row_i in zip(present, dists, ids, strict=True):
            near = [
                (int(i), float(d))
                for d, i in zip(row_d, row_i, strict=True)
                if i != NO_RESULT and int(i) != face_id and d < threshold
            ]
            target, nearby = _best_identity(
                engine, repo, face_id, photo_id, embs[face_id], near, threshold, votes, dim
            )
            now = engine.clock()
            if target is None:
                target = repo.create(engine.analyzer.model_id, now)
            repo.place([face_id], target, now, pinned=False)
            _merge_bridged(engine, repo, target, nearby - {target}, threshold, votes, dim)
    return len(pending)


def _vectors(engine: FaceTrace, repo: IdentityStore, identity: int, dim: int) -> np.ndarray:
    vecs = engine.store.embeddings(repo.members(identity, MEMBER_SAMPLE), dim)
    return np.stack(list(vecs.values())) if vecs else np.zeros((0, dim), np.float32)


def _merge_bridged(
    engine: FaceTrace,
    repo: IdentityStore,
    target: int,
    others: set[int],
    threshold: float,
    votes: int,
    dim: int,
) -> None:
    """Merge ``target`` with the nearby identities that :func:`choose_merge` accepts,
    one at a time: a new face can show that two parts of one person belong together.
    Never two pinned identities, two that share a photo, or across a rejection."""
    while others:
        pinned = bool(repo.pinned_faces(target))
        photos = repo.photos_of(target)
        allowed = {}
        for other in sorted(others):
            if (pinned and repo.pinned_faces(other)) or photos & repo.photos_of(other):
                continue
            if repo.rejected_between(target, other):
                continue
            allowed[other] = _vectors(engine, repo, other, dim)
        chosen = choose_merge(_vectors(engine, repo, target, dim), allowed, threshold, votes)
        if chosen is None:
            return
        keep, gone = (chosen, target) if repo.pinned_faces(chosen) else (target, chosen)
        repo.place(repo.members(gone), keep, engine.clock(), pinned=False)
        repo.drop_empty()
        others.discard(chosen)
        others.discard(target)
        target = keep


def _best_identity(
    engine: FaceTrace,
    repo: IdentityStore,
    face_id: int,
    photo_id: int,
    x: np.ndarray,
    near: list[tuple[int, float]],
    threshold: float,
    votes: int,
    dim: int,
) -> tuple[int | None, set[int]]:
    """The identity the face joins (None: a new one), and every identity near it."""
    owners = repo.identity_of([i for i, _ in near])
    support = Counter(owners[i] for i, _ in near if i in owners)
    nearby = set(support)
    blocked = repo.identities_in_photo(photo_id) | repo.rejections(face_id)
    candidates = {
        identity: (_vectors(engine, repo, identity, dim), close)
        for identity, close in support.items()
        if identity not in blocked
    }
    return choose_identity(x, candidates, threshold, votes), nearby


def recluster(engine: FaceTrace, actor: Actor) -> PeopleReclustered:
    """Group every face again, keeping each human decision; returns the audited event."""
    require(engine, actor, Action.PEOPLE_EDIT)
    threshold = cluster_threshold(engine)
    repo = IdentityStore(engine.store.engine)
    model_id = engine.analyzer.model_id
    dim = engine.analyzer.embedder.dim
    a = repo.assignments(model_id)
    n = a.face_ids.size
    if n:
        vecs = np.zeros((n, dim), dtype=np.float32)
        row_of = {int(f): r for r, f in enumerate(a.face_ids)}
        for ids, batch in engine.store.iter_embeddings(model_id, dim):
            vecs[[row_of[int(i)] for i in ids]] = batch
        pins = np.where(a.pinned, a.identity_ids, NO_PIN)
        rejected = {row_of[f]: ids for f, ids in a.rejected.items() if f in row_of}
        labels = average_linkage(
            vecs,
            threshold,
            constraints=Constraints(photo=a.photo_ids, pinned=pins, rejected=rejected),
            votes=engine.settings.cluster_votes,
        )
        groups = _keep_ids(labels, a.identity_ids, pins, a.face_ids)
    else:
        groups = []
    repo.replace_unpinned(groups, model_id, engine.clock())
    event = PeopleReclustered(
        actor=actor.label,
        at=engine.clock(),
        faces=int(n),
        people=len(groups),
        threshold=round(threshold, 6),
    )
    engine.track_event(event)
    return event


def _keep_ids(
    labels: np.ndarray, old: np.ndarray, pins: np.ndarray, face_ids: np.ndarray
) -> list[tuple[int | None, list[int]]]:
    """Name each new cluster: its pin if it has one, else the unpinned old identity it
    holds most of (each reused once, so ids stay stable across reclusters), else new."""
    pinned_ids = {int(p) for p in pins if p != NO_PIN}
    taken: set[int] = set()
    groups: list[tuple[int | None, list[int]]] = []
    order = sorted(np.unique(labels), key=lambda c: -int((labels == c).sum()))
    for c in order:
        rows = np.flatnonzero(labels == c)
        pin = next((int(p) for p in pins[rows] if p != NO_PIN), None)
        target = pin
        if target is None:
            votes = Counter(int(o) for o in old[rows] if o != -1 and int(o) not in pinned_ids)
            target = next((i for i, _ in votes.most_common() if i not in taken), None)
        if target is not None:
            taken.add(target)
        groups.append((target, [int(face_ids[r]) for r in rows]))
    return groups


# --- human corrections ---------------------------------------------------------------


def _summary(repo: IdentityStore, identity_id: int) -> PersonSummary:
    found = repo.summaries([identity_id])
    if not found:
        raise NotFoundError(f"no person {identity_id}")
    return found[0]


def merge(engine: FaceTrace, actor: Actor, into: int, others: list[int]) -> PersonSummary:
    """Merge ``others`` into ``into``: a person says they are one. Faces of one photo
    are never one person, so identities that share a photo are refused."""
    require(engine, actor, Action.PEOPLE_EDIT, f"person:{into}")
    repo = IdentityStore(engine.store.engine)
    others = sorted(set(others) - {into})
    if not others:
        raise UsageError("name at least one other person to merge")
    for identity in [into, *others]:
        _summary(repo, identity)
    photos = repo.photos_of(into)
    for other in others:
        theirs = repo.photos_of(other)
        if photos & theirs:
            raise UsageError(
                f"people {into} and {other} both appear in photo {min(photos & theirs)}; "
                "two faces of one photo are never one person"
            )
        photos |= theirs
    now = engine.clock()
    moved = [f for other in others for f in repo.members(other)]
    repo.place(moved, into, now, pinned=True)
    repo.pin_all(into, now)
    repo.drop_empty()
    engine.track_event(
        PeopleMerged(actor=actor.label, at=now, into=into, merged=others, faces_moved=len(moved))
    )
    return _summary(repo, into)


def _faces_of(repo: IdentityStore, identity: int, face_ids: list[int]) -> list[int]:
    members = set(repo.members(identity))
    wanted = sorted(set(face_ids))
    stray = [f for f in wanted if f not in members]
    if not wanted or stray:
        raise UsageError(f"faces {stray or wanted} are not faces of person {identity}")
    return wanted


def split(engine: FaceTrace, actor: Actor, identity: int, face_ids: list[int]) -> PersonSummary:
    """Move ``face_ids`` out of ``identity`` into a new person; both stay apart for good."""
    require(engine, actor, Action.PEOPLE_EDIT, f"person:{identity}")
    repo = IdentityStore(engine.store.engine)
    _summary(repo, identity)
    faces = _faces_of(repo, identity, face_ids)
    if len(faces) == len(repo.members(identity)):
        raise UsageError("a split must leave at least one face behind")
    now = engine.clock()
    new = repo.create(engine.analyzer.model_id, now)
    repo.place(faces, new, now, pinned=True)
    repo.pin_all(identity, now)
    engine.track_event(
        PersonSplit(actor=actor.label, at=now, identity=identity, new_identity=new, faces=faces)
    )
    return _summary(repo, new)


def name(engine: FaceTrace, actor: Actor, identity: int, label: str | None) -> PersonSummary:
    """Name a person (``None`` clears the name); naming confirms its faces (pins them)."""
    require(engine, actor, Action.PEOPLE_EDIT, f"person:{identity}")
    repo = IdentityStore(engine.store.engine)
    _summary(repo, identity)
    clean = label.strip() if label else None
    if clean is not None and not 0 < len(clean) <= 200:
        raise UsageError("a name is 1-200 characters")
    now = engine.clock()
    repo.set_name(identity, clean, now)
    repo.pin_all(identity, now)
    engine.track_event(PersonNamed(actor=actor.label, at=now, identity=identity, name=clean))
    return _summary(repo, identity)


def reject(engine: FaceTrace, actor: Actor, identity: int, face_ids: list[int]) -> list[int]:
    """ "Not this person": the faces leave ``identity`` and never return to it; each
    starts an identity of its own (a recluster may group them elsewhere). Returns the
    new identity ids."""
    require(engine, actor, Action.PEOPLE_EDIT, f"person:{identity}")
    repo = IdentityStore(engine.store.engine)
    _summary(repo, identity)
    faces = _faces_of(repo, identity, face_ids)
    now = engine.clock()
    repo.reject(faces, identity)
    fresh = []
    for face in faces:
        new = repo.create(engine.analyzer.model_id, now)
        repo.place([face], new, now, pinned=False)
        fresh.append(new)
    repo.drop_empty()
    engine.track_event(FacesRejected(actor=actor.label, at=now, identity=identity, faces=faces))
    return fresh


# --- reading -----------------------------------------------------------------------


def group_by_person(engine: FaceTrace, faces: tuple[ProbeFace, ...]) -> tuple[ProbeFace, ...]:
    """Each probe face's matches tagged with their person, and grouped by person."""
    repo = IdentityStore(engine.store.engine)
    owner = repo.identity_of([m.face_id for f in faces for m in f.matches])
    if not owner:
        return faces
    summaries = {p.id: p for p in repo.summaries(sorted(set(owner.values())))}
    out = []
    for face in faces:
        matches = tuple(replace(m, person_id=owner.get(m.face_id)) for m in face.matches)
        hits: dict[int, list[Match]] = {}
        for m in matches:  # best first, so each person's first match is its best
            if m.person_id is not None and m.person_id in summaries:
                hits.setdefault(m.person_id, []).append(m)
        people = tuple(
            PersonHit(
                person_id=pid,
                name=summaries[pid].name,
                distance=ms[0].distance,
                false_match_rate=ms[0].false_match_rate,
                face_ids=tuple(m.face_id for m in ms),
                faces=summaries[pid].faces,
                photos=summaries[pid].photos,
                sources=summaries[pid].sources,
            )
            for pid, ms in hits.items()
        )
        out.append(replace(face, matches=matches, people=people))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class PersonDetail:
    """A person and every face behind it, with where each photo was found."""

    summary: PersonSummary
    faces: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary.to_dict(), "face_list": self.faces}


def list_people(engine: FaceTrace, actor: Actor, limit: int = 50) -> list[PersonSummary]:
    """People with the most faces first."""
    require(engine, actor, Action.PEOPLE_VIEW)
    return IdentityStore(engine.store.engine).summaries()[:limit]


def show(engine: FaceTrace, actor: Actor, identity: int) -> PersonDetail:
    """One person: summary, and each face with its photo's provenance."""
    require(engine, actor, Action.PEOPLE_VIEW, f"person:{identity}")
    repo = IdentityStore(engine.store.engine)
    summary = _summary(repo, identity)
    members = repo.members(identity)
    records = engine.store.faces(members, actor.org_id)  # not other organisations' private
    pinned = set(repo.pinned_faces(identity))
    faces = []
    for face_id in members:
        rec = records.get(face_id)
        if rec is None:
            continue
        faces.append(
            {
                "face_id": rec.id,
                "photo_id": rec.photo_id,
                "bbox": rec.bbox.as_list(),
                "pinned": face_id in pinned,
                "thumbnail": engine.blobs.locate(rec.thumbnail) if rec.thumbnail else None,
                "provenance": [
                    {
                        "source": p.source,
                        "origin": p.origin,
                        "page_url": p.page_url,
                        "collected_at": p.collected_at.isoformat(),
                    }
                    for p in rec.provenance
                ],
            }
        )
    return PersonDetail(summary, faces)
