"""Cases: what an organisation's audit trail and confirmations record of each case, and
the case report (PDF) that proves it.

A case is not stored apart. Its searches are the ``search.performed`` entries of the
organisation's hash-chained audit log (probe photos are never kept: a probe is its
SHA-256 and its face count), its confirmations the two-person rule's rows. A case ID
another organisation uses is another case; a case the actor's organisation does not
have is not found, whether or not another has it, so a refusal tells nothing.

Each match is shown as it is *now*: with the provenance the actor's organisation sees,
or as deleted since the search (a takedown, an opt-out, retention; a face no longer in
any source the organisation sees reads the same). Its false-match rate comes from the
model's current calibration at the distance the search recorded, and the expected
number of false matches is that rate times the gallery size of that search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from facetrace.errors import NotFoundError, UsageError
from facetrace.events import CaseReportExported, SearchPerformed
from facetrace.governance.access import Action, Actor, allowed_actions, require
from facetrace.governance.audit import AuditEntry, AuditHead, AuditLog, VerifyReport
from facetrace.governance.confirm import ConfirmationStatus
from facetrace.governance.repository import GovernanceStore
from facetrace.operations.gallery import read_thumbnail
from facetrace.store.repository import FaceRecord, utc
from facetrace.types import Provenance

if TYPE_CHECKING:
    from facetrace.app import FaceTrace

NOTICE = "Matches are investigative leads with a stated false-match rate, not identifications."


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class CaseSummary:
    """One case in a list: its searches and confirmations, and when it last changed."""

    case_id: str
    searches: int
    confirmations: int
    last_search_at: datetime | None
    updated_at: datetime | None
    """The latest search, proposal or confirmation."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "searches": self.searches,
            "confirmations": self.confirmations,
            "last_search_at": _iso(self.last_search_at),
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class CaseMatch:
    """One match a search returned, as the gallery holds it now.

    ``distance``: as the search recorded it. ``false_match_rate``: the chance a stranger
    is this close (None: the model is not calibrated); ``expected_false_matches``: that
    rate times the search's gallery size. ``present``: False when the face was deleted
    since the search (then ``provenance`` is empty); ``provenance``: the sightings the
    organisation sees, earliest first.
    """

    face_id: int
    distance: float
    false_match_rate: float | None
    expected_false_matches: float | None
    present: bool
    provenance: tuple[Provenance, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        first = self.provenance[0] if self.provenance else None
        return {
            "face_id": self.face_id,
            "distance": round(self.distance, 6),
            "false_match_rate": self.false_match_rate,
            "expected_false_matches": self.expected_false_matches,
            "present": self.present,
            "source": first.source if first else None,
            "origin": first.origin if first else None,
            "page_url": first.page_url if first else None,
            "collected_at": first.collected_at.isoformat() if first else None,
            "provenance": [p.to_dict() for p in self.provenance],
        }


@dataclass(frozen=True, slots=True)
class CaseSearch:
    """One search of the case: its audit entry (``seq``, ``hash``), who, when (UTC) and
    why, the probe's SHA-256 and face count, the gallery size searched, and the matches
    (every probe face's, in the order recorded)."""

    seq: int
    hash: str
    at: datetime
    actor: str
    reason: str
    probe_sha256: str
    probe_faces: int
    gallery_size: int
    matches: tuple[CaseMatch, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "reason": self.reason,
            "probe_sha256": self.probe_sha256,
            "probe_faces": self.probe_faces,
            "gallery_size": self.gallery_size,
            "matches": [m.to_dict() for m in self.matches],
        }


@dataclass(frozen=True, slots=True)
class CaseConfirmation:
    """A match proposed as the case's identification, and its confirmation if made."""

    face_id: int
    status: ConfirmationStatus
    proposed_by: str
    proposed_at: datetime
    confirmed_by: str | None
    confirmed_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "face_id": self.face_id,
            "status": self.status.value,
            "proposed_by": self.proposed_by,
            "proposed_at": self.proposed_at.isoformat(),
            "confirmed_by": self.confirmed_by,
            "confirmed_at": _iso(self.confirmed_at),
        }


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """A case: its searches and confirmations, oldest first, with the head of the
    organisation's audit chain and the check of that whole chain."""

    case_id: str
    searches: tuple[CaseSearch, ...]
    confirmations: tuple[CaseConfirmation, ...]
    head: AuditHead
    verify: VerifyReport

    NOTICE = NOTICE

    def to_dict(self) -> dict[str, Any]:
        return {
            "notice": self.NOTICE,
            "case_id": self.case_id,
            "searches": [s.to_dict() for s in self.searches],
            "confirmations": [c.to_dict() for c in self.confirmations],
            "head": self.head.to_dict(),
            "verify": self.verify.to_dict(),
        }


def list_cases(engine: FaceTrace, actor: Actor) -> tuple[CaseSummary, ...]:
    """The cases of the actor's organisation with a search or a confirmation, the most
    recently changed first."""
    require(engine, actor, Action.CASES_READ)
    repo = GovernanceStore(engine.store.engine)
    out = []
    for case in repo.case_activity(actor.org_id, SearchPerformed.kind):
        searched = datetime.fromisoformat(case.last_search_at) if case.last_search_at else None
        times = [t for t in (searched, case.last_confirmation_at) if t is not None]
        out.append(
            CaseSummary(
                case.case_id,
                case.searches,
                case.confirmations,
                searched,
                max(times) if times else None,
            )
        )
    out.sort(key=lambda c: (c.updated_at.timestamp() if c.updated_at else 0.0, c.case_id))
    return tuple(reversed(out))


def show(engine: FaceTrace, actor: Actor, case_id: str) -> CaseRecord:
    """One case of the actor's organisation (NotFoundError if it has none by that ID).
    Reading it is not audited; its report is."""
    case = _read(engine, actor, case_id)
    return case.with_check(AuditLog(engine.store.engine).verify(None, actor.org_id))


def report(engine: FaceTrace, actor: Actor, case_id: str) -> bytes:
    """The case report: a PDF of the case's searches, matches and confirmations, and of
    the audit chain's head and check, with how to check it again.

    The report is audited (``case.report``) *before* the chain is read, so the head it
    prints includes its own entry: keeping that head anchors everything up to the
    report. Match thumbnails are included for actors who may search (who may see them
    anyway).
    """
    case = _read(engine, actor, case_id)
    log = AuditLog(engine.store.engine)
    engine.track_event(
        CaseReportExported(
            actor=actor.label,
            at=engine.clock(),
            org=actor.org_id,
            case_id=case.case_id,
            searches=len(case.searches),
            entries=len(log.entries(case.case_id, org=actor.org_id)),
        )
    )
    record = case.with_check(log.verify(None, actor.org_id))
    thumbnails: dict[int, bytes] = {}
    if Action.SEARCH in allowed_actions(actor):
        for face_id, face in case.faces.items():
            data = read_thumbnail(engine, face)
            if data is not None:
                thumbnails[face_id] = data
    org = GovernanceStore(engine.store.engine).get_org_by_id(actor.org_id)
    from facetrace.operations.case_report import render

    return render(
        record,
        organisation=org.name if org else str(actor.org_id),
        generated_at=utc(engine.clock()),
        generated_by=actor.label,
        thumbnails=thumbnails,
    )


# --- reading a case -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Case:
    """A case as read, before the chain is checked (its callers check the whole chain
    once, at the moment each needs)."""

    case_id: str
    searches: tuple[CaseSearch, ...]
    confirmations: tuple[CaseConfirmation, ...]
    faces: dict[int, FaceRecord]
    """The stored faces of its matches that the actor's organisation sees."""

    def with_check(self, checked: VerifyReport) -> CaseRecord:
        return CaseRecord(self.case_id, self.searches, self.confirmations, checked.head, checked)


def _read(engine: FaceTrace, actor: Actor, case_id: str) -> _Case:
    """The case of the actor's organisation (NotFoundError if it has none by that ID)."""
    require(engine, actor, Action.CASES_READ, f"case:{case_id}")
    case_id = case_id.strip()
    if not case_id:
        raise UsageError("a case ID is needed")
    org = actor.org_id
    log = AuditLog(engine.store.engine)
    entries = [e for e in log.entries(case_id, org=org) if e.kind == SearchPerformed.kind]
    repo = GovernanceStore(engine.store.engine)
    confirmations = tuple(
        CaseConfirmation(
            face_id=c.face_id,
            status=(
                ConfirmationStatus.CONFIRMED if c.confirmed_at else ConfirmationStatus.PROPOSED
            ),
            proposed_by=c.proposed_label,
            proposed_at=c.proposed_at,
            confirmed_by=c.confirmed_label,
            confirmed_at=c.confirmed_at,
        )
        for c in repo.confirmations(case_id, org)
    )
    if not entries and not confirmations:
        raise NotFoundError(f"no case {case_id!r}")
    recorded = [_results(e) for e in entries]
    wanted = sorted({face for results in recorded for face, _ in results})
    faces = engine.store.faces(wanted, org)  # only what the organisation sees
    rate = engine.calibration.false_match_rate if engine.calibration else None
    searches = []
    for entry, results in zip(entries, recorded, strict=True):
        gallery = _int(entry.payload.get("gallery_size"))
        matches = []
        for face_id, distance in results:
            fmr = rate(distance) if rate else None
            face = faces.get(face_id)
            matches.append(
                CaseMatch(
                    face_id=face_id,
                    distance=distance,
                    false_match_rate=fmr,
                    expected_false_matches=fmr * gallery if fmr is not None else None,
                    present=face is not None,
                    provenance=face.provenance if face is not None else (),
                )
            )
        searches.append(
            CaseSearch(
                seq=entry.seq,
                hash=entry.hash,
                at=datetime.fromisoformat(entry.at),
                actor=entry.actor,
                reason=str(entry.payload.get("reason", "")),
                probe_sha256=str(entry.payload.get("probe_sha256", "")),
                probe_faces=_int(entry.payload.get("probe_faces")),
                gallery_size=gallery,
                matches=tuple(matches),
            )
        )
    return _Case(case_id, tuple(searches), confirmations, faces)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _results(entry: AuditEntry) -> list[tuple[int, float]]:
    """A search entry's ``(face_id, distance)`` pairs; malformed ones are left out (the
    chain's check says whether the entry was changed)."""
    out = []
    for item in entry.payload.get("results") or []:
        try:
            face_id, distance = item
            out.append((int(face_id), float(distance)))
        except (TypeError, ValueError):
            continue
    return out


def report_filename(case_id: str) -> str:
    """A file name for a case's report: ``case-<ID>.pdf``, the ID cut to 100 letters,
    digits, '.', '_' and '-'."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", case_id.strip()).strip("._")[:100]
    return f"case-{safe or 'report'}.pdf"
