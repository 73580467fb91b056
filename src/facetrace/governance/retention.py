"""Retention: delete what each source has kept longer than its policy allows.

A source's policy may hold ``retention_days`` (``facetrace sources add --retention-days``).
:func:`run_retention` deletes that source's sightings collected more than that many days
before the engine's clock; a photo left with no sighting goes with its faces (a photo
also seen through another source stays). Time comes from ``engine.clock``, so tests
drive it with a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

from facetrace.events import RetentionSwept
from facetrace.governance.access import Action, Actor, require
from facetrace.governance.purge import finish_purge, holds_writers
from facetrace.governance.repository import GovernanceStore
from facetrace.store.repository import translates_store_errors

if TYPE_CHECKING:
    from facetrace.app import FaceTrace


@dataclass(frozen=True, slots=True)
class SourceSweep:
    source: str
    retention_days: float
    cutoff: str
    sightings_expired: int


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """One sweep: per-source expiries and what was deleted in total."""

    at: str
    sources: tuple[SourceSweep, ...]
    sightings_removed: int
    photos_removed: int
    faces_removed: int
    removed_ids_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "sources": [
                {
                    "source": s.source,
                    "retention_days": s.retention_days,
                    "cutoff": s.cutoff,
                    "sightings_expired": s.sightings_expired,
                }
                for s in self.sources
            ],
            "sightings_removed": self.sightings_removed,
            "photos_removed": self.photos_removed,
            "faces_removed": self.faces_removed,
            "removed_ids_sha256": self.removed_ids_sha256,
        }


def retention_days(policy: dict[str, Any]) -> float | None:
    """The policy's positive ``retention_days``, or None when it keeps data indefinitely."""
    value = policy.get("retention_days")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


@translates_store_errors
@holds_writers
def run_retention(engine: FaceTrace, actor: Actor) -> RetentionReport:
    """Delete every sighting past its source's retention period (``retention.run``)."""
    require(engine, actor, Action.RETENTION_RUN)
    repo = GovernanceStore(engine.store.engine)
    now = engine.clock().astimezone(UTC)
    sweeps = []
    expired: list[int] = []
    for source in engine.store.list_sources():
        days = retention_days(source.policy)
        if days is None:
            continue
        cutoff = now - timedelta(days=days)
        ids = repo.sightings_collected_before(source.id, cutoff)
        expired += ids
        sweeps.append(SourceSweep(source.name, days, cutoff.isoformat(), len(ids)))
    deleted = repo.delete_sightings(expired)
    purge = finish_purge(engine, deleted) if expired else None
    report = RetentionReport(
        at=now.isoformat(),
        sources=tuple(sweeps),
        sightings_removed=len(deleted.sighting_ids),
        photos_removed=len(deleted.photo_ids),
        faces_removed=len(deleted.face_ids),
        removed_ids_sha256=purge.ids_sha256 if purge else "",
    )
    engine.track_event(
        RetentionSwept(
            actor=actor.label,
            at=now,
            sources=[s.source for s in sweeps],
            sightings_removed=report.sightings_removed,
            photos_removed=report.photos_removed,
            faces_removed=report.faces_removed,
            removed_ids_sha256=report.removed_ids_sha256,
        )
    )
    return report
