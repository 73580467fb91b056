"""SQL for identities; nothing else in the package issues it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, func, select, update

from facetrace.identity.schema import face_identities, identities, identity_rejections
from facetrace.store import schema as store_schema
from facetrace.store.repository import utc


@dataclass(frozen=True, slots=True)
class PersonSummary:
    """One identity: how many faces, photos and sources stand behind it."""

    id: int
    name: str | None
    faces: int
    photos: int
    sources: int
    pinned_faces: int
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "faces": self.faces,
            "photos": self.photos,
            "sources": self.sources,
            "pinned_faces": self.pinned_faces,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Assignments:
    """Every face of a model with its photo, identity (or -1) and pin, ``(n,)`` arrays."""

    face_ids: np.ndarray
    photo_ids: np.ndarray
    identity_ids: np.ndarray
    pinned: np.ndarray
    rejected: dict[int, frozenset[int]]
    """Face id -> identities it must never join."""


def _chunks(ids: Sequence[int], size: int = 500) -> Iterable[list[int]]:
    items = list(ids)
    for start in range(0, len(items), size):
        yield items[start : start + size]


class IdentityStore:
    """Repository over the identity tables of one metadata database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- reads -------------------------------------------------------------

    def unassigned(self, model_id: str) -> list[tuple[int, int]]:
        """``(face_id, photo_id)`` of every face of ``model_id`` with no identity, by id."""
        f, fi = store_schema.faces, face_identities
        query = (
            select(f.c.id, f.c.photo_id)
            .outerjoin(fi, fi.c.face_id == f.c.id)
            .where(f.c.model_id == model_id, fi.c.face_id.is_(None))
            .order_by(f.c.id)
        )
        with self.engine.connect() as conn:
            return [(r.id, r.photo_id) for r in conn.execute(query)]

    def identity_of(self, face_ids: Sequence[int]) -> dict[int, int]:
        """Face id -> identity id, for the faces that have one."""
        out: dict[int, int] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(sorted(set(face_ids))):
                rows = conn.execute(
                    select(face_identities.c.face_id, face_identities.c.identity_id).where(
                        face_identities.c.face_id.in_(chunk)
                    )
                )
                out.update({r.face_id: r.identity_id for r in rows})
        return out

    def members(self, identity_id: int, limit: int | None = None) -> list[int]:
        """Face ids of an identity, oldest first (at most ``limit``)."""
        query = (
            select(face_identities.c.face_id)
            .where(face_identities.c.identity_id == identity_id)
            .order_by(face_identities.c.face_id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def photos_of(self, identity_id: int) -> set[int]:
        """Photo ids that hold a face of the identity."""
        f, fi = store_schema.faces, face_identities
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(f.c.photo_id)
                    .join(fi, fi.c.face_id == f.c.id)
                    .where(fi.c.identity_id == identity_id)
                ).scalars()
            )

    def identities_in_photo(self, photo_id: int) -> set[int]:
        """Identities that already hold a face of ``photo_id``."""
        f, fi = store_schema.faces, face_identities
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(fi.c.identity_id)
                    .join(f, f.c.id == fi.c.face_id)
                    .where(f.c.photo_id == photo_id)
                ).scalars()
            )

    def pinned_faces(self, identity_id: int) -> list[int]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(face_identities.c.face_id).where(
                        face_identities.c.identity_id == identity_id,
                        face_identities.c.pinned.is_(True),
                    )
                ).scalars()
            )

    def rejections(self, face_id: int) -> set[int]:
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(identity_rejections.c.identity_id).where(
                        identity_rejections.c.face_id == face_id
                    )
                ).scalars()
            )

    def rejected_between(self, a: int, b: int) -> bool:
        """Whether a face of either identity was rejected from the other."""
        r, fi = identity_rejections, face_identities
        query = (
            select(r.c.face_id)
            .join(fi, fi.c.face_id == r.c.face_id)
            .where(
                ((fi.c.identity_id == a) & (r.c.identity_id == b))
                | ((fi.c.identity_id == b) & (r.c.identity_id == a))
            )
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def exists(self, identity_id: int) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(select(identities.c.id).where(identities.c.id == identity_id)).first()
                is not None
            )

    def summaries(self, identity_ids: Sequence[int] | None = None) -> list[PersonSummary]:
        """Summaries of the given identities (all if None), most faces first."""
        f, fi, s, i = store_schema.faces, face_identities, store_schema.sightings, identities
        query = (
            select(
                i.c.id,
                i.c.name,
                i.c.updated_at,
                func.count(func.distinct(fi.c.face_id)).label("faces"),
                func.count(func.distinct(f.c.photo_id)).label("photos"),
                func.count(func.distinct(s.c.source_id)).label("sources"),
            )
            .join(fi, fi.c.identity_id == i.c.id)
            .join(f, f.c.id == fi.c.face_id)
            .join(s, s.c.photo_id == f.c.photo_id)
            .group_by(i.c.id, i.c.name, i.c.updated_at)
        )
        pins = select(fi.c.identity_id, func.count().label("n")).where(fi.c.pinned.is_(True))
        if identity_ids is not None:
            query = query.where(i.c.id.in_(list(identity_ids)))
            pins = pins.where(fi.c.identity_id.in_(list(identity_ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            pinned = {r[0]: int(r[1]) for r in conn.execute(pins.group_by(fi.c.identity_id))}
        out = [
            PersonSummary(
                id=r.id,
                name=r.name,
                faces=r.faces,
                photos=r.photos,
                sources=r.sources,
                pinned_faces=int(pinned.get(r.id, 0)),
                updated_at=utc(r.updated_at),
            )
            for r in rows
        ]
        return sorted(out, key=lambda p: (-p.faces, p.id))

    def assignments(self, model_id: str) -> Assignments:
        """Every face of ``model_id`` with its photo, identity and pin, in face id order."""
        f, fi = store_schema.faces, face_identities
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(f.c.id, f.c.photo_id, fi.c.identity_id, fi.c.pinned)
                .outerjoin(fi, fi.c.face_id == f.c.id)
                .where(f.c.model_id == model_id)
                .order_by(f.c.id)
            ).all()
            rejected: dict[int, set[int]] = {}
            for r in conn.execute(select(identity_rejections)):
                rejected.setdefault(r.face_id, set()).add(r.identity_id)
        return Assignments(
            face_ids=np.array([r.id for r in rows], dtype=np.int64),
            photo_ids=np.array([r.photo_id for r in rows], dtype=np.int64),
            identity_ids=np.array(
                [r.identity_id if r.identity_id is not None else -1 for r in rows], np.int64
            ),
            pinned=np.array([bool(r.pinned) for r in rows], dtype=bool),
            rejected={k: frozenset(v) for k, v in rejected.items()},
        )

    # --- writes ------------------------------------------------------------

    def create(self, model_id: str, now: datetime, name: str | None = None) -> int:
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    identities.insert().values(
                        model_id=model_id, name=name, created_at=now, updated_at=now
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )

    def place(
        self, face_ids: Sequence[int], identity_id: int, now: datetime, *, pinned: bool
    ) -> None:
        """Put faces in an identity (moving them if they had one)."""
        with self.engine.begin() as conn:
            for chunk in _chunks(sorted(set(face_ids))):
                conn.execute(delete(face_identities).where(face_identities.c.face_id.in_(chunk)))
                conn.execute(
                    face_identities.insert(),
                    [{"face_id": f, "identity_id": identity_id, "pinned": pinned} for f in chunk],
                )
            conn.execute(
                update(identities).where(identities.c.id == identity_id).values(updated_at=now)
            )

    def pin_all(self, identity_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(face_identities)
                .where(face_identities.c.identity_id == identity_id)
                .values(pinned=True)
            )
            conn.execute(
                update(identities).where(identities.c.id == identity_id).values(updated_at=now)
            )

    def set_name(self, identity_id: int, name: str | None, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(identities)
                .where(identities.c.id == identity_id)
                .values(name=name, updated_at=now)
            )

    def reject(self, face_ids: Sequence[int], identity_id: int) -> None:
        """Record "not this person" for each face (idempotent)."""
        with self.engine.begin() as conn:
            for face_id in sorted(set(face_ids)):
                conn.execute(
                    delete(identity_rejections).where(
                        identity_rejections.c.face_id == face_id,
                        identity_rejections.c.identity_id == identity_id,
                    )
                )
                conn.execute(
                    identity_rejections.insert().values(face_id=face_id, identity_id=identity_id)
                )

    def replace_unpinned(
        self, groups: Sequence[tuple[int | None, list[int]]], model_id: str, now: datetime
    ) -> None:
        """One transaction: forget every unpinned assignment of ``model_id`` and write
        ``groups`` (``(identity id or None for a new one, face ids)``), then drop
        identities left with no face."""
        f, fi = store_schema.faces, face_identities
        with self.engine.begin() as conn:
            model_faces = select(f.c.id).where(f.c.model_id == model_id)
            conn.execute(delete(fi).where(fi.c.pinned.is_(False), fi.c.face_id.in_(model_faces)))
            for identity_id, members in groups:
                target = identity_id
                if target is None:
                    target = int(
                        conn.execute(
                            identities.insert().values(
                                model_id=model_id, name=None, created_at=now, updated_at=now
                            )
                        ).inserted_primary_key[0]  # type: ignore[index]
                    )
                pinned_here = set(
                    conn.execute(select(fi.c.face_id).where(fi.c.identity_id == target)).scalars()
                )
                fresh = [m for m in members if m not in pinned_here]
                if fresh:
                    conn.execute(
                        fi.insert(),
                        [{"face_id": m, "identity_id": target, "pinned": False} for m in fresh],
                    )
            self._drop_empty(conn)

    def empty(self) -> list[int]:
        """Identities with no face."""
        held = select(face_identities.c.identity_id)
        with self.engine.connect() as conn:
            return list(
                conn.execute(select(identities.c.id).where(identities.c.id.not_in(held))).scalars()
            )

    def drop_empty(self) -> int:
        """Delete identities with no face; returns how many."""
        with self.engine.begin() as conn:
            return self._drop_empty(conn)

    @staticmethod
    def _drop_empty(conn: Any) -> int:
        held = select(face_identities.c.identity_id)
        result = conn.execute(delete(identities).where(identities.c.id.not_in(held)))
        return int(result.rowcount or 0)
