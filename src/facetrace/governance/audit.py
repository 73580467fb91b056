"""The audit log: every event, hash-chained, written before the action's result is returned.

Each entry's *body* is canonical JSON (sorted keys, no spaces, UTF-8) of::

    {"seq": n, "kind": ..., "at": ISO-8601 UTC, "actor": ..., "case_id": ... | null,
     "payload": {...}, "prev": <hash of entry n-1, or 64 zeros for the first>}

and its ``hash`` is the SHA-256 hex of the body. Changing, deleting or reordering an
entry breaks the chain; :meth:`AuditLog.verify` finds it. Cutting entries off the end
leaves a valid but shorter chain, so an auditor keeps the :class:`AuditHead` that
``facetrace audit head`` prints (count and head hash) outside the system and passes it
back to ``verify``: a shorter log, or a different hash at that position, is reported.

Each organisation has a chain of its own (``seq`` counts its entries only): its
auditors read, verify and anchor it without learning anything of another's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Engine

from facetrace.events import PLATFORM_ORG, Event
from facetrace.governance.repository import AuditRow, GovernanceStore
from facetrace.store.repository import utc

GENESIS = "0" * 64


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, Enum):
        return value.value
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    return str(value)


def canonical_json(data: object) -> str:
    """Sorted keys, no whitespace, UTF-8 kept as is: the exact text a hash covers."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditHead:
    """How long the log is and the hash of its last entry (``GENESIS`` when empty)."""

    count: int
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "hash": self.hash}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditHead:
        try:
            return cls(count=int(data["count"]), hash=str(data["hash"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an audit head: {exc}") from exc


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry as stored; ``body`` is the canonical JSON ``hash`` covers."""

    seq: int
    kind: str
    at: str
    actor: str
    case_id: str | None
    payload: dict[str, Any]
    prev: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "at": self.at,
            "actor": self.actor,
            "case_id": self.case_id,
            "payload": self.payload,
            "prev": self.prev,
            "hash": self.hash,
        }


def entry_body(entry: dict[str, Any]) -> str:
    """The canonical body of an exported entry (its dict without ``hash``)."""
    return canonical_json({k: entry[k] for k in entry if k != "hash"})


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Outcome of :meth:`AuditLog.verify`: ``ok`` when ``problems`` is empty."""

    entries: int
    head: AuditHead
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head.to_dict(),
            "problems": list(self.problems),
        }


class AuditLog:
    """The engine's event sink: appends each event to the hash chain before returning.

    A failure to write raises :class:`~facetrace.errors.AuditError`, so the action
    whose event it was fails too (a search is never answered unlogged).
    """

    def __init__(self, engine: Engine) -> None:
        self.repo = GovernanceStore(engine)

    def track(self, event: Event) -> None:
        payload = json.loads(canonical_json(event.payload()))
        case_id = payload.get("case_id")
        at = utc(event.at).isoformat()

        def make(seq: int, prev: str) -> AuditRow:
            body = canonical_json(
                {
                    "seq": seq,
                    "kind": event.kind,
                    "at": at,
                    "actor": event.actor,
                    "case_id": case_id if isinstance(case_id, str) else None,
                    "payload": payload,
                    "prev": prev,
                }
            )
            return AuditRow(
                seq,
                event.kind,
                at,
                event.actor,
                case_id if isinstance(case_id, str) else None,
                body,
                sha256_hex(body),
            )

        self.repo.append_audit(make, org_id=event.org)

    def head(self, org: int = PLATFORM_ORG) -> AuditHead:
        """The head of organisation ``org``'s chain."""
        rows = self.repo.audit_rows(org_id=org)
        return AuditHead(len(rows), rows[-1].hash) if rows else AuditHead(0, GENESIS)

    def entries(self, case_id: str | None = None, *, org: int = PLATFORM_ORG) -> list[AuditEntry]:
        """``org``'s entries in order; only one case's when ``case_id`` is given."""
        out = []
        for row in self.repo.audit_rows(case_id, org_id=org):
            body = json.loads(row.body)
            out.append(
                AuditEntry(
                    seq=row.seq,
                    kind=row.kind,
                    at=row.at,
                    actor=row.actor,
                    case_id=row.case_id,
                    payload=body.get("payload", {}),
                    prev=body.get("prev", ""),
                    hash=row.hash,
                )
            )
        return out

    def verify(self, anchor: AuditHead | None = None, org: int = PLATFORM_ORG) -> VerifyReport:
        """Check ``org``'s chain: every entry's hash, the links, the sequence and, if
        given, the anchor.

        Finds a changed entry (its hash no longer matches its body, or its columns
        disagree with its body), a deleted or reordered one (a gap in ``seq`` or a
        broken ``prev`` link), and, with ``anchor``, a truncated or rewritten log.
        """
        rows = self.repo.audit_rows(org_id=org)
        problems: list[str] = []
        prev = GENESIS
        for expected_seq, row in enumerate(rows, start=1):
            label = f"entry {row.seq}"
            if sha256_hex(row.body) != row.hash:
                problems.append(f"{label}: hash does not match its content (changed)")
            try:
                body = json.loads(row.body)
            except ValueError:
                problems.append(f"{label}: body is not JSON (changed)")
                prev = row.hash
                continue
            columns = {
                "seq": row.seq,
                "kind": row.kind,
                "at": row.at,
                "actor": row.actor,
                "case_id": row.case_id,
            }
            for key, value in columns.items():
                if body.get(key) != value:
                    problems.append(f"{label}: column {key} disagrees with the entry (changed)")
            if row.seq != expected_seq:
                problems.append(
                    f"{label}: expected entry {expected_seq} here (deleted or reordered entries)"
                )
            if body.get("prev") != prev:
                problems.append(
                    f"{label}: link to the previous entry is broken "
                    "(an entry before it was changed, deleted or reordered)"
                )
            prev = row.hash
        if anchor is not None:
            if len(rows) < anchor.count:
                problems.append(
                    f"the log has {len(rows)} entries but the anchored head had {anchor.count} "
                    "(truncated)"
                )
            elif anchor.count > 0 and rows[anchor.count - 1].hash != anchor.hash:
                problems.append(
                    f"entry {anchor.count} differs from the anchored head (history rewritten)"
                )
        head = AuditHead(len(rows), rows[-1].hash) if rows else AuditHead(0, GENESIS)
        return VerifyReport(len(rows), head, tuple(problems))
