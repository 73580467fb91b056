"""Two-person rule: a search result is an investigative lead until two users agree.

The first authorised user to call :func:`confirm_match` for a (face, case) *proposes*
the identification; a second, different user's call *confirms* it. The same user
cannot do both, nor can the bootstrap admin take part (it is not a named person).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from facetrace.errors import AccessDeniedError, NotFoundError, UsageError
from facetrace.events import MatchConfirmed, MatchProposed
from facetrace.governance.access import Action, Actor, audit_refusal, require
from facetrace.governance.repository import GovernanceStore

if TYPE_CHECKING:
    from facetrace.app import FaceTrace


class ConfirmationStatus(StrEnum):
    PROPOSED = "proposed"  # still an investigative lead, awaiting a second user
    CONFIRMED = "confirmed"  # a confirmed identification


@dataclass(frozen=True, slots=True)
class ConfirmationResult:
    face_id: int
    case_id: str
    status: ConfirmationStatus
    proposed_by: str
    confirmed_by: str | None

    @property
    def label(self) -> str:
        if self.status is ConfirmationStatus.CONFIRMED:
            return "confirmed identification (two-person rule met)"
        return "investigative lead: proposed, needs confirmation by a second user"

    def to_dict(self) -> dict[str, Any]:
        return {
            "face_id": self.face_id,
            "case_id": self.case_id,
            "status": self.status.value,
            "label": self.label,
            "proposed_by": self.proposed_by,
            "confirmed_by": self.confirmed_by,
        }


def _deny(engine: FaceTrace, actor: Actor, case_id: str, reason: str) -> AccessDeniedError:
    audit_refusal(
        engine,
        actor.label,
        Action.MATCH_CONFIRM.value,
        reason,
        f"case:{case_id}",
        org=actor.org_id,
    )
    return AccessDeniedError(reason)


def confirm_match(
    engine: FaceTrace, actor: Actor, face_id: int, case_id: str
) -> ConfirmationResult:
    """Propose (first user) or confirm (second user) ``face_id`` as the case's identification."""
    case_id = case_id.strip()
    if not case_id:
        raise UsageError("a confirmation needs a case ID (--case)")
    require(engine, actor, Action.MATCH_CONFIRM, f"case:{case_id}")
    if actor.bootstrap:
        raise _deny(
            engine,
            actor,
            case_id,
            "access denied: two-person confirmation needs named users with API keys",
        )
    if not engine.store.faces([face_id], actor.org_id):
        raise NotFoundError(f"no face {face_id}")
    repo = GovernanceStore(engine.store.engine)
    now = engine.clock()
    org = actor.org_id
    if repo.propose(face_id, case_id, actor.user_id, actor.label, now, org):
        engine.track_event(
            MatchProposed(actor=actor.label, at=now, org=org, case_id=case_id, face_id=face_id)
        )
        return ConfirmationResult(face_id, case_id, ConfirmationStatus.PROPOSED, actor.label, None)
    existing = repo.get_confirmation(face_id, case_id, org)
    if existing is None:  # pragma: no cover - the proposal exists, or propose() succeeded
        raise NotFoundError("the proposal disappeared; try again")
    if existing.confirmed_at is not None:
        return ConfirmationResult(
            face_id,
            case_id,
            ConfirmationStatus.CONFIRMED,
            existing.proposed_label,
            existing.confirmed_label,
        )
    if existing.proposed_by == actor.user_id:
        raise _deny(
            engine,
            actor,
            case_id,
            "access denied: two-person rule: a different user must confirm this match",
        )
    if not repo.confirm(face_id, case_id, actor.user_id, actor.label, now, org):
        raise UsageError("this match was confirmed meanwhile")
    engine.track_event(
        MatchConfirmed(
            actor=actor.label,
            at=now,
            org=org,
            case_id=case_id,
            face_id=face_id,
            proposed_by=existing.proposed_label,
        )
    )
    return ConfirmationResult(
        face_id, case_id, ConfirmationStatus.CONFIRMED, existing.proposed_label, actor.label
    )
