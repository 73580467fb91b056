"""The vector index: inspect, compact, copy into another backend; and calibration,
which moves every search's threshold."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from facetrace.config import IndexBackend
from facetrace.governance.access import Action, Actor, require
from facetrace.index.base import MaintainableIndex

if TYPE_CHECKING:
    from facetrace.app import FaceTrace


def _index(engine: FaceTrace) -> MaintainableIndex:
    return cast(MaintainableIndex, engine.index)


def stats(engine: FaceTrace, actor: Actor) -> dict[str, object]:
    """The backend, structure, counts and sizes (the platform's, who run the index: the
    counts span every organisation)."""
    require(engine, actor, Action.INDEX_MANAGE)
    return _index(engine).stats()


def rebuild(engine: FaceTrace, actor: Actor) -> dict[str, object]:
    """Drop removed vectors for good and rebuild the search structure."""
    require(engine, actor, Action.INDEX_MANAGE)
    index = _index(engine)
    claim = getattr(index, "claim_writer", None)
    if callable(claim):
        claim()  # the embedded index has one writer; another process's ingest refuses this
    index.rebuild()
    index.save()
    return index.stats()


def migrate(
    engine: FaceTrace,
    actor: Actor,
    to: IndexBackend,
    *,
    source: IndexBackend | None = None,
    vectors: Path | None = None,
) -> int:
    """Copy every vector into backend ``to`` without re-embedding; returns the count."""
    from facetrace.app import index_name
    from facetrace.index.maintenance import migrate_index

    require(engine, actor, Action.INDEX_MANAGE)
    model = engine.analyzer.embedder
    return migrate_index(
        engine.settings, to, source, vectors, model.dim, index_name(model.model_id)
    )


def check_calibrate(engine: FaceTrace, actor: Actor) -> None:
    """Storing a calibration table in the gallery's home moves every search's
    threshold: only actors allowed to calibrate may (checked before the work)."""
    require(engine, actor, Action.CALIBRATE)
