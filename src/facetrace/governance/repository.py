"""SQL of the governance tables, and the deletions takedowns, opt-outs and retention make.

Like :mod:`facetrace.store.repository`, this is the only place governance issues SQL.
Deletions of gallery data happen in one transaction each; :meth:`GovernanceStore.scrub`
then makes sure no copy of deleted rows is left in the database files.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, Table, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from facetrace.errors import AuditError, ConflictError, StoreError
from facetrace.governance import schema as gs
from facetrace.store import schema
from facetrace.store.repository import JobStatus, photos_seen_by, utc


@dataclass(frozen=True, slots=True)
class OrgRecord:
    """An organisation: its users, private sources, cases and audit chain are its own."""

    id: int
    name: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created_at": self.created_at.isoformat()}


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    org_id: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "org_id": self.org_id,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored API key: its public ``key_id``, owner and the SHA-256 ``digest`` of the token."""

    key_id: str
    user_id: int
    digest: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """The key as it may be shown: never its digest."""
        return {
            "key_id": self.key_id,
            "user_id": self.user_id,
            "scopes": list(self.scopes),
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A signed-in person's session: found by the SHA-256 ``digest`` of its token."""

    user_id: int
    csrf: str
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditRow:
    seq: int
    kind: str
    at: str
    actor: str
    case_id: str | None
    body: str
    hash: str


@dataclass(frozen=True, slots=True)
class Deleted:
    """Ids deleted from the gallery in one transaction, and thumbnails to wipe."""

    sighting_ids: tuple[int, ...] = ()
    photo_ids: tuple[int, ...] = ()
    face_ids: tuple[int, ...] = ()
    thumbnails: tuple[str, ...] = ()
    kept_photos: int = 0  # photos that lost a sighting but stay through another
    kept_photo_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Confirmation:
    face_id: int
    case_id: str
    proposed_by: int | None
    proposed_label: str
    proposed_at: datetime
    confirmed_by: int | None
    confirmed_label: str | None
    confirmed_at: datetime | None


@dataclass(frozen=True, slots=True)
class CaseActivity:
    """One case of an organisation: its searches (audit entries of one kind) and its
    confirmations. ``last_search_at``: the latest search's ISO-8601 UTC time, as the
    log holds it (None without a search)."""

    case_id: str
    searches: int
    last_search_at: str | None
    confirmations: int
    last_confirmation_at: datetime | None


def _opt_utc(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None


class GovernanceStore:
    """Repository over the governance tables (and gallery deletions) of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- audit log -----------------------------------------------------------

    def append_audit(
        self, make: Callable[[int, str], AuditRow], org_id: int = 1, attempts: int = 20
    ) -> AuditRow:
        """Append the row ``make(seq, prev_hash)`` builds after the head of ``org_id``'s
        chain (``seq``: its place in that chain).

        Both the row's place in the table and its place in the chain are unique, so two
        writers racing for the same place cannot both win; the loser retries on the new
        head. Raises :class:`AuditError` if it cannot write.
        """
        t = gs.audit_log
        last_exc: Exception | None = None
        for attempt in range(attempts):
            try:
                with self.engine.begin() as conn:
                    last = conn.execute(select(func.max(t.c.seq))).scalar()
                    head = conn.execute(
                        select(t.c.org_seq, t.c.hash)
                        .where(t.c.org_id == org_id)
                        .order_by(t.c.org_seq.desc())
                        .limit(1)
                    ).first()
                    seq, prev = (head.org_seq + 1, head.hash) if head else (1, "0" * 64)
                    row = make(seq, prev)
                    conn.execute(
                        t.insert().values(
                            seq=int(last or 0) + 1,
                            org_id=org_id,
                            org_seq=row.seq,
                            kind=row.kind,
                            at=row.at,
                            actor=row.actor,
                            case_id=row.case_id,
                            body=row.body,
                            hash=row.hash,
                        )
                    )
                return row
            except (IntegrityError, OperationalError) as exc:
                last_exc = exc
                time.sleep(0.01 * (attempt + 1))
            except SQLAlchemyError as exc:
                raise AuditError(f"cannot write the audit log: {exc}") from exc
        raise AuditError(f"cannot write the audit log: {last_exc}")

    def audit_rows(self, case_id: str | None = None, *, org_id: int = 1) -> list[AuditRow]:
        """``org_id``'s chain in order (one case's entries when ``case_id`` is given)."""
        t = gs.audit_log
        query = select(t).where(t.c.org_id == org_id).order_by(t.c.org_seq)
        if case_id is not None:
            query = query.where(t.c.case_id == case_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [AuditRow(r.org_seq, r.kind, r.at, r.actor, r.case_id, r.body, r.hash) for r in rows]

    def case_activity(self, org_id: int, search_kind: str) -> list[CaseActivity]:
        """``org_id``'s cases with a ``search_kind`` entry in its chain or a
        confirmation, in no particular order."""
        t, c = gs.audit_log, gs.match_confirmations
        with self.engine.connect() as conn:
            searched = conn.execute(
                select(t.c.case_id, func.count(), func.max(t.c.at))
                .where(t.c.org_id == org_id, t.c.kind == search_kind, t.c.case_id.is_not(None))
                .group_by(t.c.case_id)
            ).all()
            confirmed = conn.execute(
                select(
                    c.c.case_id,
                    func.count(),
                    func.max(func.coalesce(c.c.confirmed_at, c.c.proposed_at)),
                )
                .where(c.c.org_id == org_id)
                .group_by(c.c.case_id)
            ).all()
        searches: dict[str, tuple[int, str | None]] = {r[0]: (r[1], r[2]) for r in searched}
        confirmations: dict[str, tuple[int, datetime | None]] = {
            r[0]: (r[1], r[2]) for r in confirmed
        }
        out = []
        for case in set(searches) | set(confirmations):
            n_searches, last_search = searches.get(case, (0, None))
            n_confirmations, last_confirmation = confirmations.get(case, (0, None))
            out.append(
                CaseActivity(
                    case, n_searches, last_search, n_confirmations, _opt_utc(last_confirmation)
                )
            )
        return out

    def audit_orgs(self) -> list[int]:
        """Organisations with at least one audit entry."""
        t = gs.audit_log
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(t.c.org_id).distinct()).scalars())

    # --- organisations -----------------------------------------------------------

    def _insert_named(self, table: Table, values: dict[str, Any], what: str) -> None:
        """Insert a row whose ``name`` is unique; a taken name is a ConflictError."""
        try:
            with self.engine.begin() as conn:
                conn.execute(table.insert().values(**values))
        except IntegrityError as exc:
            raise ConflictError(f"{what} named {values['name']!r} already exists") from exc

    def add_org(self, name: str, now: datetime) -> OrgRecord:
        self._insert_named(gs.organisations, {"name": name, "created_at": now}, "an organisation")
        org = self.get_org(name)
        if org is None:  # pragma: no cover - just inserted
            raise StoreError(f"organisation {name!r} was not stored")
        return org

    def get_org(self, name: str) -> OrgRecord | None:
        t = gs.organisations
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.name == name)).first()
        return OrgRecord(row.id, row.name, utc(row.created_at)) if row else None

    def get_org_by_id(self, org_id: int) -> OrgRecord | None:
        t = gs.organisations
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.id == org_id)).first()
        return OrgRecord(row.id, row.name, utc(row.created_at)) if row else None

    def list_orgs(self) -> list[OrgRecord]:
        t = gs.organisations
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).order_by(t.c.id)).all()
        return [OrgRecord(r.id, r.name, utc(r.created_at)) for r in rows]

    # --- users and keys --------------------------------------------------------

    def count_users(self) -> int:
        """Users ever created (revoked ones included)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(gs.users)).scalar() or 0)

    def add_user(self, name: str, role: str, now: datetime, org_id: int = 1) -> UserRecord:
        values = {"name": name, "role": role, "created_at": now, "org_id": org_id}
        self._insert_named(gs.users, values, "a user")
        user = self.get_user(name)
        if user is None:  # pragma: no cover - just inserted
            raise StoreError(f"user {name!r} was not stored")
        return user

    def get_user(self, name: str) -> UserRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(gs.users).where(gs.users.c.name == name)).first()
        return _user(row._mapping) if row else None

    def get_user_by_id(self, user_id: int) -> UserRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(gs.users).where(gs.users.c.id == user_id)).first()
        return _user(row._mapping) if row else None

    def list_users(self, org_id: int | None = None) -> list[UserRecord]:
        """Users, of one organisation when ``org_id`` is given."""
        query = select(gs.users).order_by(gs.users.c.name)
        if org_id is not None:
            query = query.where(gs.users.c.org_id == org_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_user(r._mapping) for r in rows]

    def password_hash(self, user_id: int) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(gs.users.c.password_hash).where(gs.users.c.id == user_id)
            ).scalar()
        return str(value) if value else None

    def set_password_hash(self, user_id: int, value: str, now: datetime) -> None:
        """Store a new password hash and end the user's sessions (signed in with the old)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(gs.users).where(gs.users.c.id == user_id).values(password_hash=value)
            )
            conn.execute(
                update(gs.sessions)
                .where(gs.sessions.c.user_id == user_id, gs.sessions.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )

    def add_session(
        self, digest: str, user_id: int, csrf: str, now: datetime, expires_at: datetime
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                gs.sessions.insert().values(
                    digest=digest,
                    user_id=user_id,
                    csrf=csrf,
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    def get_session(self, digest: str) -> SessionRecord | None:
        t = gs.sessions
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.digest == digest)).first()
        if row is None:
            return None
        m = row._mapping
        revoked = utc(m["revoked_at"]) if m["revoked_at"] is not None else None
        return SessionRecord(m["user_id"], m["csrf"], utc(m["expires_at"]), revoked)

    def revoke_session(self, digest: str, now: datetime) -> bool:
        t = gs.sessions
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t)
                .where(t.c.digest == digest, t.c.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount
        return bool(done)

    def revoke_user(self, user_id: int, now: datetime) -> None:
        """Revoke a user and every key and session of theirs, in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(
                update(gs.sessions)
                .where(gs.sessions.c.user_id == user_id, gs.sessions.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            conn.execute(
                update(gs.users)
                .where(gs.users.c.id == user_id, gs.users.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            conn.execute(
                update(gs.api_keys)
                .where(gs.api_keys.c.user_id == user_id, gs.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )

    def add_key(
        self,
        *,
        key_id: str,
        user_id: int,
        digest: str,
        scopes: Sequence[str],
        now: datetime,
        expires_at: datetime | None,
    ) -> KeyRecord:
        with self.engine.begin() as conn:
            conn.execute(
                gs.api_keys.insert().values(
                    key_id=key_id,
                    user_id=user_id,
                    digest=digest,
                    scopes=json.dumps(sorted(scopes)),
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        key = self.get_key(key_id)
        if key is None:  # pragma: no cover - just inserted
            raise StoreError("the key was not stored")
        return key

    def get_key(self, key_id: str) -> KeyRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(gs.api_keys).where(gs.api_keys.c.key_id == key_id)).first()
        return _key(row._mapping) if row else None

    def list_keys(self, user_id: int | None = None, org_id: int | None = None) -> list[KeyRecord]:
        """Keys, of one user or one organisation's users when given."""
        query = select(gs.api_keys).order_by(gs.api_keys.c.id)
        if user_id is not None:
            query = query.where(gs.api_keys.c.user_id == user_id)
        if org_id is not None:
            mine = select(gs.users.c.id).where(gs.users.c.org_id == org_id)
            query = query.where(gs.api_keys.c.user_id.in_(mine))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_key(r._mapping) for r in rows]

    def revoke_key(self, key_id: str, now: datetime) -> bool:
        """Revoke a key; False if it does not exist or was already revoked."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(gs.api_keys)
                .where(gs.api_keys.c.key_id == key_id, gs.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return bool(result.rowcount)

    # --- blocked hosts ---------------------------------------------------------

    def block_host(self, host: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(gs.blocked_hosts.c.host).where(gs.blocked_hosts.c.host == host)
            ).first()
            if not exists:
                conn.execute(gs.blocked_hosts.insert().values(host=host, created_at=now))

    def blocked_hosts(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(gs.blocked_hosts.c.host)).scalars())

    # --- suppression templates -------------------------------------------------

    def add_templates(
        self, model_id: str, group_id: str, reference: np.ndarray, reached: np.ndarray
    ) -> None:
        """Store one opt-out: its reference ``(dim,)`` and the ``(k, dim)`` faces it
        reached, under one random group id; every row gets a random id of its own."""
        rows = [(reference, "reference")] + [(r, "reached") for r in reached]
        with self.engine.begin() as conn:
            conn.execute(
                gs.suppression_templates.insert(),
                [
                    {
                        "id": secrets.token_hex(16),
                        "model_id": model_id,
                        "embedding": np.ascontiguousarray(e, np.float32).tobytes(),
                        "group_id": group_id,
                        "role": role,
                    }
                    for e, role in rows
                ],
            )

    def template_version(self, model_id: str) -> tuple[int, str]:
        """``(count, greatest id)`` of ``model_id``'s templates: changes with every opt-out
        (ids are random, so the count tells additions apart)."""
        t = gs.suppression_templates
        with self.engine.connect() as conn:
            row = conn.execute(
                select(func.count(), func.max(t.c.id)).where(t.c.model_id == model_id)
            ).one()
        return int(row[0]), str(row[1] or "")

    def templates(self, model_id: str, dim: int) -> TemplateSet:
        """Every opt-out template of ``model_id`` (possibly none)."""
        t = gs.suppression_templates
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.id, t.c.embedding, t.c.group_id, t.c.role)
                .where(t.c.model_id == model_id)
                .order_by(t.c.group_id, t.c.id)
            ).all()
        if not rows:
            return TemplateSet(
                np.zeros((0, dim), np.float32), np.zeros(0, np.int64), np.zeros(0, bool)
            )
        vecs = np.frombuffer(b"".join(r.embedding for r in rows), dtype=np.float32)
        codes: dict[str, int] = {}
        groups = np.array([codes.setdefault(r.group_id or r.id, len(codes)) for r in rows])
        return TemplateSet(
            vecs.reshape(len(rows), dim).copy(),
            groups.astype(np.int64),
            np.array([r.role != "reached" for r in rows], dtype=bool),
        )

    def template_rows(self) -> list[dict[str, Any]]:
        """Every opt-out template row as stored (to carry them into a restored gallery)."""
        t = gs.suppression_templates
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(t))]

    def add_template_rows(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert the template rows not held yet (by their random id); returns how many."""
        t = gs.suppression_templates
        with self.engine.begin() as conn:
            have = set(conn.execute(select(t.c.id)).scalars())
            fresh = [r for r in rows if r["id"] not in have]
            if fresh:
                conn.execute(t.insert(), fresh)
        return len(fresh)

    # --- two-person confirmation -----------------------------------------------

    def get_confirmation(self, face_id: int, case_id: str, org_id: int = 1) -> Confirmation | None:
        t = gs.match_confirmations
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t).where(
                    t.c.org_id == org_id, t.c.face_id == face_id, t.c.case_id == case_id
                )
            ).first()
        if row is None:
            return None
        m = row._mapping
        return Confirmation(
            face_id=m["face_id"],
            case_id=m["case_id"],
            proposed_by=m["proposed_by"],
            proposed_label=m["proposed_label"],
            proposed_at=utc(m["proposed_at"]),
            confirmed_by=m["confirmed_by"],
            confirmed_label=m["confirmed_label"],
            confirmed_at=_opt_utc(m["confirmed_at"]),
        )

    def confirmations(self, case_id: str, org_id: int) -> list[Confirmation]:
        """``org_id``'s proposals and confirmations in one case, oldest first."""
        t = gs.match_confirmations
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t)
                .where(t.c.org_id == org_id, t.c.case_id == case_id)
                .order_by(t.c.proposed_at, t.c.id)
            ).all()
        return [
            Confirmation(
                face_id=r.face_id,
                case_id=r.case_id,
                proposed_by=r.proposed_by,
                proposed_label=r.proposed_label,
                proposed_at=utc(r.proposed_at),
                confirmed_by=r.confirmed_by,
                confirmed_label=r.confirmed_label,
                confirmed_at=_opt_utc(r.confirmed_at),
            )
            for r in rows
        ]

    def propose(
        self,
        face_id: int,
        case_id: str,
        user_id: int | None,
        label: str,
        now: datetime,
        org_id: int = 1,
    ) -> bool:
        """Record a proposal; False if one exists already for this face and case."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    gs.match_confirmations.insert().values(
                        org_id=org_id,
                        face_id=face_id,
                        case_id=case_id,
                        proposed_by=user_id,
                        proposed_label=label,
                        proposed_at=now,
                    )
                )
        except IntegrityError:
            return False
        return True

    def confirm(
        self,
        face_id: int,
        case_id: str,
        user_id: int | None,
        label: str,
        now: datetime,
        org_id: int = 1,
    ) -> bool:
        """Confirm a pending proposal; False if there is none still pending."""
        t = gs.match_confirmations
        with self.engine.begin() as conn:
            result = conn.execute(
                update(t)
                .where(
                    t.c.org_id == org_id,
                    t.c.face_id == face_id,
                    t.c.case_id == case_id,
                    t.c.confirmed_at.is_(None),
                )
                .values(confirmed_by=user_id, confirmed_label=label, confirmed_at=now)
            )
        return bool(result.rowcount)

    # --- gallery selection and deletion ----------------------------------------

    def counts(self) -> dict[str, int]:
        """Rows in the gallery tables: ``photos``, ``faces``, ``sightings``."""
        out = {}
        with self.engine.connect() as conn:
            for name, table in (
                ("photos", schema.photos),
                ("faces", schema.faces),
                ("sightings", schema.sightings),
            ):
                out[name] = int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
        return out

    def photos_without_sightings(self) -> list[int]:
        """Photos no sighting holds (every photo should have at least one)."""
        p, s = schema.photos, schema.sightings
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(p.c.id)
                    .outerjoin(s, s.c.photo_id == p.c.id)
                    .where(s.c.id.is_(None))
                    .order_by(p.c.id)
                ).scalars()
            )

    def delete_photos(self, photo_ids: Sequence[int]) -> Deleted:
        """Delete photos with their faces and sightings, in one transaction."""
        if not photo_ids:
            return Deleted()
        s = schema.sightings
        with self.engine.begin() as conn:
            sighting_ids: list[int] = []
            for chunk in _chunks(sorted(set(photo_ids))):
                sighting_ids += conn.execute(
                    select(s.c.id).where(s.c.photo_id.in_(chunk))
                ).scalars()
            face_ids, thumbs = self._delete_photos(conn, sorted(set(photo_ids)))
        return Deleted(
            tuple(sorted(sighting_ids)),
            tuple(sorted(set(photo_ids))),
            tuple(face_ids),
            tuple(thumbs),
        )

    def unfinished_jobs(self) -> list[tuple[int, str]]:
        """``(job id, status)`` of ingest jobs that did not complete."""
        j = schema.jobs
        with self.engine.connect() as conn:
            return [
                (r.id, r.status)
                for r in conn.execute(
                    select(j.c.id, j.c.status)
                    .where(j.c.status != JobStatus.COMPLETED.value)
                    .order_by(j.c.id)
                )
            ]

    def sightings_of_source(self, source_id: int) -> list[int]:
        s = schema.sightings
        with self.engine.connect() as conn:
            return list(conn.execute(select(s.c.id).where(s.c.source_id == source_id)).scalars())

    def sightings_mentioning(self, text: str) -> list[tuple[int, str, str | None]]:
        """``(id, origin, page_url)`` of sightings whose origin or page URL contains ``text``."""
        s = schema.sightings
        pattern = f"%{text}%"
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(s.c.id, s.c.origin, s.c.page_url).where(
                    or_(s.c.origin.like(pattern), s.c.page_url.like(pattern))
                )
            ).all()
        return [(r.id, r.origin, r.page_url) for r in rows]

    def sightings_collected_before(self, source_id: int, before: datetime) -> list[int]:
        s = schema.sightings
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(s.c.id).where(
                        and_(s.c.source_id == source_id, s.c.collected_at < before)
                    )
                ).scalars()
            )

    def errors_mentioning(self, text: str) -> list[tuple[int, str]]:
        e = schema.ingest_errors
        with self.engine.connect() as conn:
            rows = conn.execute(select(e.c.id, e.c.item).where(e.c.item.like(f"%{text}%"))).all()
        return [(r.id, r.item) for r in rows]

    def delete_errors(self, *, source_id: int | None = None, ids: Iterable[int] = ()) -> int:
        """Delete ingest-error rows of a source and/or by id (they name origins)."""
        e = schema.ingest_errors
        n = 0
        id_list = list(ids)
        with self.engine.begin() as conn:
            if source_id is not None:
                n += conn.execute(delete(e).where(e.c.source_id == source_id)).rowcount
            if id_list:
                n += conn.execute(delete(e).where(e.c.id.in_(id_list))).rowcount
        return n

    def delete_jobs_of_source(self, source_id: int) -> int:
        """Delete a source's ingest jobs and their items (they name origins and paths)."""
        j, ji = schema.jobs, schema.job_items
        with self.engine.begin() as conn:
            job_ids = list(conn.execute(select(j.c.id).where(j.c.source_id == source_id)).scalars())
            for chunk in _chunks(job_ids):
                conn.execute(delete(ji).where(ji.c.job_id.in_(chunk)))
                conn.execute(delete(j).where(j.c.id.in_(chunk)))
        return len(job_ids)

    def job_items_mentioning(self, text: str) -> list[tuple[int, str]]:
        ji = schema.job_items
        with self.engine.connect() as conn:
            rows = conn.execute(select(ji.c.id, ji.c.key).where(ji.c.key.like(f"%{text}%"))).all()
        return [(r.id, r.key) for r in rows]

    def delete_job_items(self, ids: Sequence[int]) -> int:
        ji = schema.job_items
        n = 0
        with self.engine.begin() as conn:
            for chunk in _chunks(sorted(ids)):
                n += conn.execute(delete(ji).where(ji.c.id.in_(chunk))).rowcount
        return n

    def delete_sightings(self, sighting_ids: Sequence[int]) -> Deleted:
        """Delete sightings; photos left with no sighting go too, with their faces.

        One transaction. A photo also held through another sighting keeps it and stays.
        """
        if not sighting_ids:
            return Deleted()
        s = schema.sightings
        ids = sorted(set(sighting_ids))
        with self.engine.begin() as conn:
            photo_ids = set()
            for chunk in _chunks(ids):
                photo_ids |= set(
                    conn.execute(select(s.c.photo_id).where(s.c.id.in_(chunk))).scalars()
                )
                conn.execute(delete(s).where(s.c.id.in_(chunk)))
            still_held = set()
            for chunk in _chunks(sorted(photo_ids)):
                still_held |= set(
                    conn.execute(select(s.c.photo_id).where(s.c.photo_id.in_(chunk))).scalars()
                )
            orphans = sorted(photo_ids - still_held)
            face_ids, thumbs = self._delete_photos(conn, orphans)
        return Deleted(
            tuple(ids),
            tuple(orphans),
            tuple(face_ids),
            tuple(thumbs),
            len(still_held),
            tuple(sorted(still_held)),
        )

    def as_seen_by(self, photo_ids: Sequence[int], org: int) -> tuple[set[int], int]:
        """Of ``photo_ids``, those organisation ``org`` still sees, and how many faces the
        others (hidden from it) hold."""
        s, f = schema.sightings, schema.faces
        seen: set[int] = set()
        hidden_faces = 0
        with self.engine.connect() as conn:
            for chunk in _chunks(sorted(set(photo_ids))):
                seen |= set(
                    conn.execute(photos_seen_by(org).where(s.c.photo_id.in_(chunk))).scalars()
                )
                hidden = [p for p in chunk if p not in seen]
                if hidden:
                    hidden_faces += int(
                        conn.execute(
                            select(func.count()).select_from(f).where(f.c.photo_id.in_(hidden))
                        ).scalar()
                        or 0
                    )
        return seen, hidden_faces

    def delete_faces(self, face_ids: Sequence[int]) -> Deleted:
        """Delete faces; a photo left with no face at all goes too, with its sightings."""
        if not face_ids:
            return Deleted()
        f, s = schema.faces, schema.sightings
        ids = sorted(set(face_ids))
        with self.engine.begin() as conn:
            photo_ids: set[int] = set()
            thumbs: list[str] = []
            for chunk in _chunks(ids):
                rows = conn.execute(
                    select(f.c.photo_id, f.c.thumbnail).where(f.c.id.in_(chunk))
                ).all()
                photo_ids |= {r.photo_id for r in rows}
                thumbs += [r.thumbnail for r in rows if r.thumbnail]
                conn.execute(delete(f).where(f.c.id.in_(chunk)))
            with_faces = set()
            for chunk in _chunks(sorted(photo_ids)):
                with_faces |= set(
                    conn.execute(select(f.c.photo_id).where(f.c.photo_id.in_(chunk))).scalars()
                )
            orphans = sorted(photo_ids - with_faces)
            sighting_ids: list[int] = []
            for chunk in _chunks(orphans):
                sighting_ids += conn.execute(
                    select(s.c.id).where(s.c.photo_id.in_(chunk))
                ).scalars()
            self._delete_photos(conn, orphans)
        return Deleted(tuple(sorted(sighting_ids)), tuple(orphans), tuple(ids), tuple(thumbs))

    @staticmethod
    def _delete_photos(conn: Connection, photo_ids: Sequence[int]) -> tuple[list[int], list[str]]:
        f, s, p = schema.faces, schema.sightings, schema.photos
        face_ids: list[int] = []
        thumbs: list[str] = []
        for chunk in _chunks(list(photo_ids)):
            rows = conn.execute(select(f.c.id, f.c.thumbnail).where(f.c.photo_id.in_(chunk))).all()
            face_ids += [r.id for r in rows]
            thumbs += [r.thumbnail for r in rows if r.thumbnail]
            conn.execute(delete(f).where(f.c.photo_id.in_(chunk)))
            conn.execute(delete(s).where(s.c.photo_id.in_(chunk)))
            conn.execute(delete(p).where(p.c.id.in_(chunk)))
        return sorted(face_ids), thumbs

    def scrub(self, timeout_s: float = 10.0) -> bool:
        """Leave no copy of deleted rows in the database files.

        SQLite (``secure_delete`` is on, so freed cells are zeroed): ``VACUUM`` rewrites
        the file from live rows, then ``wal_checkpoint(TRUNCATE)`` copies the WAL back
        and truncates it to 0 bytes. Returns False if another connection kept the WAL
        from being truncated within ``timeout_s``. PostgreSQL: ``VACUUM`` (space is
        reused; old tuples are not overwritten immediately, which the README states).
        """
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("VACUUM")
                if self.engine.dialect.name != "sqlite":
                    return True
                deadline = time.monotonic() + timeout_s
                while True:
                    busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
                    if busy is None or int(busy[0]) == 0:
                        return True
                    if time.monotonic() > deadline:
                        return False
                    time.sleep(0.05)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not compact the database after deleting: {exc}") from exc


@dataclass(frozen=True, slots=True)
class TemplateSet:
    """Opt-out templates: ``embeddings`` ``(m, dim)`` float32, ``groups`` ``(m,)`` int64
    (rows of one opt-out share a code), ``reference`` ``(m,)`` bool (the opt-out's own
    photo, as against a face it reached)."""

    embeddings: np.ndarray
    groups: np.ndarray
    reference: np.ndarray


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _user(m: Any) -> UserRecord:
    return UserRecord(
        id=m["id"],
        name=m["name"],
        role=m["role"],
        created_at=utc(m["created_at"]),
        revoked_at=_opt_utc(m["revoked_at"]),
        org_id=m["org_id"],
    )


def _key(m: Any) -> KeyRecord:
    return KeyRecord(
        key_id=m["key_id"],
        user_id=m["user_id"],
        digest=m["digest"],
        scopes=tuple(json.loads(m["scopes"] or "[]")),
        created_at=utc(m["created_at"]),
        expires_at=_opt_utc(m["expires_at"]),
        revoked_at=_opt_utc(m["revoked_at"]),
    )
