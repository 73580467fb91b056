"""Reading and checking the hash-chained audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from facetrace.events import AuditExported
from facetrace.governance.access import Action, Actor, require
from facetrace.governance.audit import AuditEntry, AuditHead, AuditLog, VerifyReport

if TYPE_CHECKING:
    from facetrace.app import FaceTrace


@dataclass(frozen=True, slots=True)
class CaseExport:
    """One case's audit entries with their hashes, and the log's head when exported."""

    case_id: str
    entries: tuple[AuditEntry, ...]
    head: AuditHead

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "entries": [e.to_dict() for e in self.entries],
            "head": self.head.to_dict(),
        }


def head(engine: FaceTrace, actor: Actor) -> AuditHead:
    """The log's head (count and hash), to keep outside the system."""
    require(engine, actor, Action.AUDIT_VERIFY)
    return AuditLog(engine.store.engine).head(actor.org_id)


def verify(engine: FaceTrace, actor: Actor, anchor: AuditHead | None = None) -> VerifyReport:
    """Check the organisation's chain, and that it still passes through ``anchor``."""
    require(engine, actor, Action.AUDIT_VERIFY)
    return AuditLog(engine.store.engine).verify(anchor, actor.org_id)


def export(engine: FaceTrace, actor: Actor, case_id: str) -> CaseExport:
    """One case of the actor's organisation: its trail; the export itself is audited."""
    require(engine, actor, Action.AUDIT_READ, f"case:{case_id}")
    log = AuditLog(engine.store.engine)
    entries = tuple(log.entries(case_id, org=actor.org_id))
    engine.track_event(
        AuditExported(
            actor=actor.label,
            at=engine.clock(),
            org=actor.org_id,
            case_id=case_id,
            entries=len(entries),
        )
    )
    return CaseExport(case_id, entries, log.head(actor.org_id))
