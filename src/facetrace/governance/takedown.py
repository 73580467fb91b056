"""Takedown: remove everything derived only from a source or a host, and block it.

A photo seen through several places keeps the sightings not taken down and stays;
a photo left with no sighting goes, with its faces, embeddings, index entries and
thumbnails (see :mod:`facetrace.governance.purge` for how bytes are scrubbed). The
source (status ``blocked``) or host (block list) is blocked *before* anything is
deleted, so a concurrent ingest stops, and stays blocked for future collection.

A source is taken down by its own organisation (a platform admin may also take down
a shared one); hosts span every organisation's sources and are the platform's. The
receipt another organisation gets counts what it no longer sees: a photo that stays
through a source hidden from it is reported removed, and gallery-wide totals are left
out, so a receipt tells nothing of other organisations' sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from facetrace.errors import NotFoundError, UsageError
from facetrace.events import TakedownPerformed
from facetrace.governance.access import Action, Actor, require
from facetrace.governance.gate import host_in, url_host
from facetrace.governance.purge import PurgeResult, finish_purge, holds_writers
from facetrace.governance.repository import Deleted, GovernanceStore
from facetrace.store.repository import (
    SourceRecord,
    SourceStatus,
    Visibility,
    translates_store_errors,
)

if TYPE_CHECKING:
    from facetrace.app import FaceTrace

_DOMAIN = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?)*"
)


class TargetKind(StrEnum):
    SOURCE = "source"
    HOST = "host"


@dataclass(frozen=True, slots=True)
class TakedownReceipt:
    """What a takedown did. Counts are rows; ``removed_ids_sha256`` is the SHA-256 of
    the canonical JSON of the sorted removed ids (faces, photos, sightings)."""

    target_kind: TargetKind
    target: str
    at: str
    before: dict[str, int]
    after: dict[str, int]
    removed: dict[str, int]
    photos_kept: int
    removed_ids_sha256: str
    blocked: bool
    storage_scrubbed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_kind": self.target_kind.value,
            "target": self.target,
            "at": self.at,
            "before": self.before,
            "after": self.after,
            "removed": self.removed,
            "photos_kept": self.photos_kept,
            "removed_ids_sha256": self.removed_ids_sha256,
            "blocked": self.blocked,
            "storage_scrubbed": self.storage_scrubbed,
        }


def normalize_domain(value: str) -> str:
    """A lower-case domain from ``example.org``, ``.example.org`` or a URL; else UsageError."""
    text = value.strip().lower()
    host = url_host(text) if "://" in text else text.strip(".")
    if not host or not _DOMAIN.fullmatch(host):
        raise UsageError(f"{value!r} is not a host name (give e.g. --host example.org)")
    return host


def target_source(engine: FaceTrace, actor: Actor, name: str) -> SourceRecord:
    """The source ``actor`` may take down: its organisation's own (or, for a platform
    admin, a shared one too). Another's shared source is refused, a private one not found."""
    require(engine, actor, Action.TAKEDOWN, f"source:{name}")
    record = engine.store.get_source(name, actor.org_id)
    if record is None:
        raise NotFoundError(f"source {name!r} is not registered")
    if record.owner_org != actor.org_id and not (
        actor.platform and record.visibility == Visibility.SHARED
    ):
        return engine.owned_source(name, actor.org_id)  # refused: another's shared source
    return record


@translates_store_errors
@holds_writers
def takedown_source(engine: FaceTrace, actor: Actor, name: str) -> TakedownReceipt:
    """Take down source ``name``: block it, then delete what only it held."""
    record = target_source(engine, actor, name)
    repo = GovernanceStore(engine.store.engine)
    before = repo.counts()
    engine.store.set_source_status(record.id, SourceStatus.BLOCKED)
    deleted = repo.delete_sightings(repo.sightings_of_source(record.id))
    errors = repo.delete_errors(source_id=record.id)
    repo.delete_jobs_of_source(record.id)
    return _finish(engine, actor, TargetKind.SOURCE, name, before, deleted, errors)


@translates_store_errors
@holds_writers
def takedown_host(engine: FaceTrace, actor: Actor, host: str) -> TakedownReceipt:
    """Take down a host and its subdomains: block it, then delete what only it held."""
    domain = normalize_domain(host)
    require(engine, actor, Action.TAKEDOWN_HOST, f"host:{domain}")
    repo = GovernanceStore(engine.store.engine)
    before = repo.counts()
    repo.block_host(domain, engine.clock())
    ids = [
        sid
        for sid, origin, page in repo.sightings_mentioning(domain)
        if host_in(url_host(origin), domain) or host_in(url_host(page), domain)
    ]
    deleted = repo.delete_sightings(ids)
    error_ids = [
        eid for eid, item in repo.errors_mentioning(domain) if host_in(url_host(item), domain)
    ]
    errors = repo.delete_errors(ids=error_ids)
    return _finish(engine, actor, TargetKind.HOST, domain, before, deleted, errors)


def _finish(
    engine: FaceTrace,
    actor: Actor,
    kind: TargetKind,
    target: str,
    before: dict[str, int],
    deleted: Deleted,
    errors: int,
) -> TakedownReceipt:
    purge: PurgeResult = finish_purge(engine, deleted)
    repo = GovernanceStore(engine.store.engine)
    after = repo.counts()
    kept = deleted.kept_photos  # had a removed sighting, stay through another one
    now = engine.clock()
    removed = {
        "sightings": len(deleted.sighting_ids),
        "photos": len(deleted.photo_ids),
        "faces": len(deleted.face_ids),
        "index_entries": purge.index_removed,
        "thumbnails": purge.thumbnails_wiped,
        "ingest_errors": errors,
    }
    if not actor.platform:  # what the organisation no longer sees; no gallery totals
        seen, hidden_faces = repo.as_seen_by(deleted.kept_photo_ids, actor.org_id)
        gone = kept - len(seen)
        kept = len(seen)
        before, after = {}, {}
        removed = {
            "sightings": len(deleted.sighting_ids),
            "photos": len(deleted.photo_ids) + gone,
            "faces": len(deleted.face_ids) + hidden_faces,
            "ingest_errors": errors,
        }
    receipt = TakedownReceipt(
        target_kind=kind,
        target=target,
        at=now.isoformat(),
        before=before,
        after=after,
        removed=removed,
        photos_kept=kept,
        removed_ids_sha256=purge.ids_sha256,
        blocked=True,
        storage_scrubbed=purge.storage_scrubbed,
    )
    engine.track_event(
        TakedownPerformed(
            actor=actor.label,
            at=now,
            org=actor.org_id,
            target_kind=kind.value,
            target=target,
            sightings_removed=len(deleted.sighting_ids),
            photos_removed=removed["photos"],
            faces_removed=removed["faces"],
            photos_kept=kept,
            removed_ids_sha256=receipt.removed_ids_sha256,
        )
    )
    return receipt
