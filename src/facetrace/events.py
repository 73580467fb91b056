"""Typed events: everything auditable the engine does is one of these dataclasses.

Events travel through one path, :meth:`facetrace.app.FaceTrace.track_event`,
into an :class:`EventSink` (the audit log). A search's event is written before
its results are returned; if it cannot be written the search fails.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

PLATFORM_ORG = 1
"""The operator's own organisation (made by the upgrade that added organisations, and
holding everything a gallery had before it): its admins run the platform."""


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of all events: who did it, when (UTC), and the organisation whose audit
    chain records it (the actor's)."""

    kind: ClassVar[str] = "event"
    actor: str
    at: datetime
    org: int = PLATFORM_ORG

    def payload(self) -> dict[str, Any]:
        """The event's own fields (without actor, time and organisation), JSON-able."""
        data = asdict(self)
        data.pop("actor")
        data.pop("at")
        data.pop("org")
        return data


@dataclass(frozen=True, kw_only=True)
class SourceRegistered(Event):
    kind: ClassVar[str] = "source.registered"
    name: str
    source_kind: str
    lawful_basis: str
    jurisdiction: str | None
    visibility: str = "private"


@dataclass(frozen=True, kw_only=True)
class SourceStatusChanged(Event):
    kind: ClassVar[str] = "source.status"
    name: str
    status: str


@dataclass(frozen=True, kw_only=True)
class FieldChange:
    """One setting's value before and after a change (``None`` = unset, the default)."""

    old: Any
    new: Any


@dataclass(frozen=True, kw_only=True)
class SourceUpdated(Event):
    """A source's lawful basis, jurisdiction or policy changed (``sources set``).

    ``changes`` maps each changed setting (``lawful_basis``, ``jurisdiction`` or a
    stored policy key such as ``max_depth``) to its old and new value; unchanged
    settings are left out. Source settings hold no secrets.
    """

    kind: ClassVar[str] = "source.updated"
    name: str
    changes: dict[str, FieldChange]


@dataclass(frozen=True, kw_only=True)
class IngestCompleted(Event):
    kind: ClassVar[str] = "ingest.completed"
    source: str
    photos_seen: int
    photos_added: int
    duplicates: int
    faces_added: int
    errors: int


@dataclass(frozen=True, kw_only=True)
class SearchPerformed(Event):
    """A 1:N search. ``results`` are ``(face_id, distance)`` pairs; never the image."""

    kind: ClassVar[str] = "search.performed"
    case_id: str
    reason: str
    probe_sha256: str
    gallery_size: int
    probe_faces: int
    results: list[tuple[int, float]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class VerifyPerformed(Event):
    kind: ClassVar[str] = "verify.performed"
    probe_sha256: str
    other_sha256: str
    distance: float | None
    same_person: bool


class EventSink(Protocol):
    """Where events go. ``track`` must persist the event before returning."""

    def track(self, event: Event) -> None: ...


# --- governance ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TakedownPerformed(Event):
    """A source or host taken down. Ids removed appear only as a SHA-256 of their list."""

    kind: ClassVar[str] = "takedown.performed"
    target_kind: str  # "source" or "host"
    target: str
    sightings_removed: int
    photos_removed: int
    faces_removed: int
    photos_kept: int
    removed_ids_sha256: str


@dataclass(frozen=True, kw_only=True)
class IngestRefused(Event):
    """Items of an ingest refused because their host is blocked (URLs are not kept)."""

    kind: ClassVar[str] = "ingest.refused"
    source: str
    host: str
    items: int


@dataclass(frozen=True, kw_only=True)
class OptOutProcessed(Event):
    """An opt-out. ``request_id`` is the receipt's; the template id is never logged."""

    kind: ClassVar[str] = "optout.processed"
    request_id: str
    faces_removed: int
    removed_ids_sha256: str


@dataclass(frozen=True, kw_only=True)
class RetentionSwept(Event):
    kind: ClassVar[str] = "retention.swept"
    sources: list[str]
    sightings_removed: int
    photos_removed: int
    faces_removed: int
    removed_ids_sha256: str


@dataclass(frozen=True, kw_only=True)
class OrganisationAdded(Event):
    """A platform admin made an organisation and its first admin."""

    kind: ClassVar[str] = "org.added"
    name: str
    admin: str


@dataclass(frozen=True, kw_only=True)
class UserAdded(Event):
    kind: ClassVar[str] = "user.added"
    name: str
    role: str


@dataclass(frozen=True, kw_only=True)
class UserRevoked(Event):
    kind: ClassVar[str] = "user.revoked"
    name: str


@dataclass(frozen=True, kw_only=True)
class KeyIssued(Event):
    kind: ClassVar[str] = "key.issued"
    key_id: str
    user: str
    scopes: list[str]
    expires_at: str | None


@dataclass(frozen=True, kw_only=True)
class KeyRevoked(Event):
    kind: ClassVar[str] = "key.revoked"
    key_id: str


@dataclass(frozen=True, kw_only=True)
class TaskSubmitted(Event):
    """A long operation was queued; its own event is recorded when it runs."""

    kind: ClassVar[str] = "task.submitted"
    task_id: int
    task_kind: str


@dataclass(frozen=True, kw_only=True)
class PasswordSet(Event):
    """A user's password was set or changed (never the password or its hash)."""

    kind: ClassVar[str] = "user.password_set"
    name: str


@dataclass(frozen=True, kw_only=True)
class SignedIn(Event):
    kind: ClassVar[str] = "session.signed_in"
    name: str
    address: str


@dataclass(frozen=True, kw_only=True)
class SignInFailed(Event):
    """A refused sign-in: the name tried, never the password."""

    kind: ClassVar[str] = "session.sign_in_failed"
    name: str
    address: str


@dataclass(frozen=True, kw_only=True)
class SignedOut(Event):
    kind: ClassVar[str] = "session.signed_out"


@dataclass(frozen=True, kw_only=True)
class AccessDenied(Event):
    kind: ClassVar[str] = "access.denied"
    action: str
    resource: str | None
    reason: str


@dataclass(frozen=True, kw_only=True)
class MatchProposed(Event):
    """First step of the two-person rule: a match proposed as an identification."""

    kind: ClassVar[str] = "match.proposed"
    case_id: str
    face_id: int


@dataclass(frozen=True, kw_only=True)
class MatchConfirmed(Event):
    """Second step: a different authorised user confirmed the identification."""

    kind: ClassVar[str] = "match.confirmed"
    case_id: str
    face_id: int
    proposed_by: str


@dataclass(frozen=True, kw_only=True)
class AuditExported(Event):
    kind: ClassVar[str] = "audit.exported"
    case_id: str
    entries: int


@dataclass(frozen=True, kw_only=True)
class CaseReportExported(Event):
    """A case's report (PDF) was made: the searches it shows, and the case's audit
    entries before this one."""

    kind: ClassVar[str] = "case.report"
    case_id: str
    searches: int
    entries: int


@dataclass(frozen=True, kw_only=True)
class PeopleReclustered(Event):
    """Every face grouped again; human decisions kept."""

    kind: ClassVar[str] = "people.reclustered"
    faces: int
    people: int
    threshold: float


@dataclass(frozen=True, kw_only=True)
class PeopleMerged(Event):
    kind: ClassVar[str] = "people.merged"
    into: int
    merged: list[int]
    faces_moved: int


@dataclass(frozen=True, kw_only=True)
class PersonSplit(Event):
    kind: ClassVar[str] = "people.split"
    identity: int
    new_identity: int
    faces: list[int]


@dataclass(frozen=True, kw_only=True)
class PersonNamed(Event):
    """A person named (or the name cleared, ``name`` None)."""

    kind: ClassVar[str] = "people.named"
    identity: int
    name: str | None


@dataclass(frozen=True, kw_only=True)
class FacesRejected(Event):
    """ "Not this person": faces taken out of an identity for good."""

    kind: ClassVar[str] = "people.rejected"
    identity: int
    faces: list[int]


@dataclass(frozen=True, kw_only=True)
class DoctorRan(Event):
    """A consistency check: problems found and repaired, per check (non-zero only)."""

    kind: ClassVar[str] = "doctor.ran"
    repair: bool
    found: dict[str, int]
    repaired: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class BackupMade(Event):
    kind: ClassVar[str] = "backup.made"
    destination: str
    files: int
    audit_count: int


@dataclass(frozen=True, kw_only=True)
class GalleryRestored(Event):
    """A gallery restored from a backup; what was re-applied from the newer gallery."""

    kind: ClassVar[str] = "gallery.restored"
    backup_created_at: str
    replayed: bool
    takedowns: int
    templates: int
    faces_removed: int
