"""Search, verify and counts: what investigators do with the gallery."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facetrace.errors import NotFoundError
from facetrace.governance.access import Action, Actor, require
from facetrace.types import SearchResult, Stats, VerifyResult

if TYPE_CHECKING:
    from facetrace.app import FaceTrace, ProbePhoto
    from facetrace.store.repository import FaceRecord


def search(
    engine: FaceTrace,
    actor: Actor,
    photo: Path | bytes | ProbePhoto,
    *,
    case_id: str,
    reason: str,
    top_k: int | None = None,
) -> SearchResult:
    """Search every face of ``photo`` for a case; recorded before results return."""
    require(engine, actor, Action.SEARCH, f"case:{case_id}" if case_id else None)
    return engine.search(
        photo,
        case_id=case_id,
        reason=reason,
        top_k=top_k,
        actor=actor.label,
        org=actor.org_id,
    )


def verify(
    engine: FaceTrace, actor: Actor, photo_a: Path | bytes, photo_b: Path | bytes
) -> VerifyResult:
    """Compare the largest face of each photo (1:1)."""
    require(engine, actor, Action.VERIFY)
    return engine.verify(photo_a, photo_b, actor=actor.label, org=actor.org_id)


def stats(engine: FaceTrace, actor: Actor) -> Stats:
    """Counts of the sources, photos and faces the actor's organisation sees (any
    signed-in actor; the whole index's size is ``index.stats``, the platform's)."""
    return engine.stats(actor.org_id)


def thumbnail(engine: FaceTrace, actor: Actor, face_id: int) -> bytes:
    """A stored face's thumbnail (JPEG bytes), for those who may search and see it."""
    require(engine, actor, Action.SEARCH, f"face:{face_id}")
    record = engine.store.faces([face_id], actor.org_id).get(face_id)
    data = read_thumbnail(engine, record) if record is not None else None
    if data is None:
        raise NotFoundError(f"no thumbnail for face {face_id}")
    return data


def read_thumbnail(engine: FaceTrace, record: FaceRecord) -> bytes | None:
    """A stored face's thumbnail (JPEG bytes) from the gallery's blob store, or None when
    it has none there (only a thumbnail's name is read). Checks no permission."""
    if not record.thumbnail:
        return None
    return engine.blobs.get(record.thumbnail)
