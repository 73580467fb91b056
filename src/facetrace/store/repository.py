"""The metadata store: repository functions over :mod:`facetrace.store.schema`.

No SQL is written outside :mod:`facetrace.store` and the governance repositories.
Every write that the engine acknowledges is one committed transaction.
"""

from __future__ import annotations

import fcntl
import functools
import json
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    create_engine,
    event,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from facetrace import faults
from facetrace.errors import (
    ConflictError,
    FaceTraceError,
    SourceBlockedError,
    StorageFullError,
    StoreError,
    is_storage_full,
)
from facetrace.events import PLATFORM_ORG
from facetrace.store import migrations, schema
from facetrace.types import BBox, Provenance, Stats
from facetrace.vision.phash import bands as phash_bands
from facetrace.vision.phash import distance as phash_distance
from facetrace.vision.phash import to_hex as phash_hex


def utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime (SQLite hands back naive ones)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SourceStatus(StrEnum):
    """A source collects while ``active``; ``blocked`` (by hand or by a takedown) never."""

    ACTIVE = "active"
    BLOCKED = "blocked"


class Visibility(StrEnum):
    """Who sees what a source collected: its owner organisation only, or every one."""

    PRIVATE = "private"
    SHARED = "shared"


def visible_to(org: int) -> ColumnElement[bool]:
    """The sources whose photos organisation ``org`` sees: its own and the shared ones."""
    src = schema.sources
    return or_(src.c.owner_org == org, src.c.visibility == Visibility.SHARED.value)


def photos_seen_by(org: int) -> Select[Any]:
    """The ids of the photos organisation ``org`` sees: those with a sighting in one of
    the sources it sees (a photo may appear once per sighting)."""
    s, src = schema.sightings, schema.sources
    return select(s.c.photo_id).join(src, src.c.id == s.c.source_id).where(visible_to(org))


class JobStatus(StrEnum):
    """An ingest job's state; ``jobs resume`` finishes any that is not ``completed``."""

    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A registered source. ``policy`` holds the collection policy as JSON-able values."""

    id: int
    name: str
    kind: str
    lawful_basis: str
    jurisdiction: str | None
    status: str
    policy: dict[str, Any]
    created_at: datetime
    owner_org: int = PLATFORM_ORG
    visibility: str = Visibility.PRIVATE.value

    def to_dict(self) -> dict[str, Any]:
        """The source with its whole policy: the stored settings, defaults for the rest."""
        from facetrace.ingest.fetch.policy import SourcePolicy

        policy: dict[str, Any] = SourcePolicy.from_source(self.policy).as_dict()
        policy["retention_days"] = self.policy.get("retention_days")
        return {
            "name": self.name,
            "kind": self.kind,
            "lawful_basis": self.lawful_basis,
            "jurisdiction": self.jurisdiction,
            "status": self.status,
            "visibility": self.visibility,
            "policy": policy,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class NewFace:
    """A face to store: box, scores, ``(5, 2)`` landmarks, ``(dim,)`` embedding."""

    bbox: BBox
    confidence: float
    quality: float
    landmarks: np.ndarray
    embedding: np.ndarray
    thumbnail: str | None


@dataclass(frozen=True, slots=True)
class NewPhoto:
    """A photo to store with the place it was found."""

    sha256: str
    width: int
    height: int
    format: str
    byte_size: int
    phash: int | None = None


@dataclass(frozen=True, slots=True)
class FaceRecord:
    """A stored face with its photo's provenance, earliest sighting first."""

    id: int
    photo_id: int
    bbox: BBox
    quality: float
    model_id: str
    thumbnail: str | None
    provenance: tuple[Provenance, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """An ingest job: its inputs (``spec``), status, item counts and item errors."""

    id: int
    source: str
    kind: str
    spec: dict[str, Any]
    status: str
    created_at: datetime
    updated_at: datetime
    item_counts: dict[str, int]
    errors: tuple[tuple[str, str], ...]
    summary: dict[str, Any] | None
    owner_org: int = PLATFORM_ORG

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "kind": self.kind,
            "spec": self.spec,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "item_counts": self.item_counts,
            "errors": [{"item": k, "error": e} for k, e in self.errors],
            "summary": self.summary,
        }


@dataclass(frozen=True, slots=True)
class PhotoWrite:
    """Outcome of :meth:`Store.add_photo`: ids, and whether the photo was new."""

    photo_id: int
    face_ids: tuple[int, ...]
    created: bool
    sighting_created: bool


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA secure_delete=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


P = ParamSpec("P")
R = TypeVar("R")


def translates_store_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Let only facetrace errors out of ``func``: a full disk becomes
    :class:`StorageFullError`, any other database error :class:`StoreError`. For the
    operations the CLI and the API call (takedown, opt-out, retention, doctor...)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except FaceTraceError as exc:
            if is_storage_full(exc) and not isinstance(exc, StorageFullError):
                raise StorageFullError(STORAGE_FULL_MESSAGE) from exc
            raise
        except (SQLAlchemyError, OSError) as exc:
            if is_storage_full(exc):
                raise StorageFullError(STORAGE_FULL_MESSAGE) from exc
            if isinstance(exc, OSError):
                raise
            raise StoreError(f"the metadata store failed: {exc}") from exc

    return wrapper


STORAGE_FULL_MESSAGE = (
    "no space left on the disk holding the gallery; nothing was half-done. Free space "
    "and run the same command again ('facetrace doctor' lists what is unfinished)"
)


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and secure delete."""
    try:
        engine = create_engine(url, future=True)
    except (SQLAlchemyError, ValueError) as exc:
        raise StoreError(f"cannot open database {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    faults.watch(engine)
    return engine


_WRITE_ATTEMPTS = 3
_IN_BATCH = 10_000
"""Ids per ``IN (...)`` list: under SQLite's bound-parameter limit."""


def _retrying_conflicts(write: Callable[[], R]) -> R:
    """Run a write transaction, again if it lost a race on a unique key: the retry sees
    what the other writer committed (a photo it stored, a sighting it recorded)."""
    for attempt in range(_WRITE_ATTEMPTS):
        try:
            return write()
        except IntegrityError:
            if attempt == _WRITE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _check_source_active(conn: Any, source_id: int) -> None:
    """Inside a write: refuse it if the source is no longer active (``FOR SHARE`` on
    PostgreSQL, so a concurrent block waits for this transaction; SQLite has one writer)."""
    status = conn.execute(
        select(schema.sources.c.status)
        .where(schema.sources.c.id == source_id)
        .with_for_update(read=True)
    ).scalar()
    if status != SourceStatus.ACTIVE:
        raise SourceBlockedError("refused: the source was blocked during this ingest")


class Store:
    """Repository over the metadata database. Open with :meth:`open`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Open (creating and migrating as needed) the database at ``url``."""
        engine = create_db_engine(url)
        try:
            migrations.upgrade(engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot prepare database: {exc}") from exc
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def exclusive(self, name: str) -> AbstractContextManager[bool]:
        """Hold the lock ``name`` alone, waiting for it, across every process sharing
        this database (yields True)."""
        return self._lock(name, exclusive=True, wait=True)

    def shared(self, name: str) -> AbstractContextManager[bool]:
        """Hold the lock ``name`` together with other holders of it shared (yields True)."""
        return self._lock(name, exclusive=False, wait=True)

    def try_exclusive(self, name: str) -> AbstractContextManager[bool]:
        """Take the lock ``name`` alone if nobody holds it; yields whether it did."""
        return self._lock(name, exclusive=True, wait=False)

    @contextmanager
    def _lock(self, name: str, *, exclusive: bool, wait: bool) -> Iterator[bool]:
        """A PostgreSQL advisory lock, or a file lock beside an SQLite file. Either is
        released when its process dies, so a lock never outlives a crash."""
        if self.engine.dialect.name == "postgresql":
            key = zlib.crc32(name.encode("utf-8"))
            kind = "" if exclusive else "_shared"
            take = f"pg_{'' if wait else 'try_'}advisory_lock{kind}"
            with self.engine.connect() as conn:
                got = conn.execute(text(f"SELECT {take}(:k)"), {"k": key}).scalar()
                conn.commit()
                try:
                    yield wait or bool(got)
                finally:
                    if wait or got:
                        conn.execute(text(f"SELECT pg_advisory_unlock{kind}(:k)"), {"k": key})
                        conn.commit()
            return
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            yield True
            return
        with open(f"{database}.{name}.lock", "a+b") as handle:
            mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB)
            try:
                fcntl.flock(handle, mode)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- sources -----------------------------------------------------------

    def add_source(
        self,
        name: str,
        *,
        kind: str,
        lawful_basis: str,
        jurisdiction: str | None,
        policy: dict[str, Any],
        now: datetime,
        owner_org: int = PLATFORM_ORG,
        visibility: str = Visibility.PRIVATE.value,
    ) -> SourceRecord:
        """Register a source of ``owner_org``; raises ConflictError if the organisation
        has a source of that name already."""
        try:
            with self.engine.begin() as conn:
                key = conn.execute(
                    schema.sources.insert().values(
                        name=name,
                        kind=kind,
                        lawful_basis=lawful_basis,
                        jurisdiction=jurisdiction,
                        status=SourceStatus.ACTIVE.value,
                        policy=json.dumps(policy, sort_keys=True),
                        created_at=now,
                        owner_org=owner_org,
                        visibility=Visibility(visibility).value,
                    )
                ).inserted_primary_key
        except IntegrityError as exc:
            raise ConflictError(f"a source named {name!r} already exists") from exc
        assert key is not None
        record = self.source_by_id(int(key[0]))
        assert record is not None
        return record

    def source_by_id(self, source_id: int) -> SourceRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.sources).where(schema.sources.c.id == source_id)
            ).first()
        return _source(row._mapping) if row else None

    def get_source(
        self, name: str, org: int = PLATFORM_ORG, *, owned: bool = False
    ) -> SourceRecord | None:
        """The source ``name`` as organisation ``org`` sees it: its own of that name,
        else (unless ``owned``) a shared one; another's private source is not found."""
        src = schema.sources
        where = src.c.owner_org == org if owned else visible_to(org)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(src).where(src.c.name == name, where).order_by(src.c.id)
            ).all()
        own = [r for r in rows if r.owner_org == org]
        chosen = own or rows
        return _source(chosen[0]._mapping) if chosen else None

    def list_sources(self, org: int | None = None) -> list[SourceRecord]:
        """Every source, or those organisation ``org`` sees."""
        query = select(schema.sources).order_by(schema.sources.c.name, schema.sources.c.id)
        if org is not None:
            query = query.where(visible_to(org))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_source(r._mapping) for r in rows]

    def hides_sources_from(self, org: int) -> bool:
        """Whether some source is invisible to ``org`` (another's private one)."""
        src = schema.sources
        with self.engine.connect() as conn:
            hidden = conn.execute(select(src.c.id).where(~visible_to(org)).limit(1)).first()
        return hidden is not None

    def set_source_status(self, source_id: int, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                schema.sources.update()
                .where(schema.sources.c.id == source_id)
                .values(status=status)
            )

    def update_source(
        self,
        source_id: int,
        *,
        lawful_basis: str,
        jurisdiction: str | None,
        policy: dict[str, Any],
    ) -> SourceRecord | None:
        """Replace a source's lawful basis, jurisdiction and stored policy (status and
        kind stay); returns the updated record, or None when there is no such source."""
        with self.engine.begin() as conn:
            updated = conn.execute(
                schema.sources.update()
                .where(schema.sources.c.id == source_id)
                .values(
                    lawful_basis=lawful_basis,
                    jurisdiction=jurisdiction,
                    policy=json.dumps(policy, sort_keys=True),
                )
            ).rowcount
        return self.source_by_id(source_id) if updated else None

    # --- photos and faces --------------------------------------------------

    def photo_id_by_sha(self, sha256: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(schema.photos.c.id).where(schema.photos.c.sha256 == sha256)
            ).scalar()

    def add_sighting(
        self,
        photo_id: int,
        source_id: int,
        origin: str,
        page_url: str | None,
        collected_at: datetime,
    ) -> bool:
        """Record where a known photo was found; False if that place was already known.

        Raises SourceBlockedError if the source was blocked meanwhile."""

        def write() -> bool:
            with self.engine.begin() as conn:
                _check_source_active(conn, source_id)
                return self._insert_sighting(
                    conn, photo_id, source_id, origin, page_url, collected_at
                )

        return _retrying_conflicts(write)

    @staticmethod
    def _insert_sighting(
        conn: Any,
        photo_id: int,
        source_id: int,
        origin: str,
        page_url: str | None,
        collected_at: datetime,
    ) -> bool:
        exists = conn.execute(
            select(schema.sightings.c.id).where(
                schema.sightings.c.photo_id == photo_id,
                schema.sightings.c.source_id == source_id,
                schema.sightings.c.origin == origin,
            )
        ).first()
        if exists:
            return False
        conn.execute(
            schema.sightings.insert().values(
                photo_id=photo_id,
                source_id=source_id,
                origin=origin,
                page_url=page_url,
                collected_at=collected_at,
            )
        )
        return True

    def add_photo(
        self,
        photo: NewPhoto,
        faces: Sequence[NewFace],
        *,
        model_id: str,
        source_id: int,
        origin: str,
        page_url: str | None,
        collected_at: datetime,
        now: datetime,
        with_faces: Callable[[Connection], None] | None = None,
    ) -> PhotoWrite:
        """Store a photo, its faces and where it was found, in one transaction.

        ``with_faces`` is called in that transaction once a new photo's faces are in
        (it writes their thumbnails: rows that commit with them, or files; see
        :meth:`facetrace.store.blobs.BlobStore.put`); it is not called when the photo
        was stored already, and again if the transaction is retried.

        If a photo with the same sha256 exists (another source, or a re-run), only
        the sighting is added and ``created`` is False. Two writers storing the same
        photo at once: the unique SHA-256 (and sighting) constraints let one win, and
        the other's transaction, retried, adds its sighting to the winner's photo.
        Raises SourceBlockedError if the source was blocked meanwhile (checked inside
        the transaction, under a share lock on the source's row where the database has
        one, so a takedown's block waits for this write and then removes it).
        """
        return _retrying_conflicts(
            lambda: self._add_photo(
                photo, faces, model_id, source_id, origin, page_url, collected_at, now, with_faces
            )
        )

    def _add_photo(
        self,
        photo: NewPhoto,
        faces: Sequence[NewFace],
        model_id: str,
        source_id: int,
        origin: str,
        page_url: str | None,
        collected_at: datetime,
        now: datetime,
        with_faces: Callable[[Connection], None] | None,
    ) -> PhotoWrite:
        with self.engine.begin() as conn:
            _check_source_active(conn, source_id)
            existing = conn.execute(
                select(schema.photos.c.id).where(schema.photos.c.sha256 == photo.sha256)
            ).scalar()
            if existing is not None:
                new_sighting = self._insert_sighting(
                    conn, existing, source_id, origin, page_url, collected_at
                )
                return PhotoWrite(existing, (), created=False, sighting_created=new_sighting)
            photo_id = conn.execute(
                schema.photos.insert().values(
                    sha256=photo.sha256,
                    **_phash_columns(photo.phash),
                    width=photo.width,
                    height=photo.height,
                    format=photo.format,
                    byte_size=photo.byte_size,
                    created_at=now,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            self._insert_sighting(conn, photo_id, source_id, origin, page_url, collected_at)
            face_ids = []
            for face in faces:
                face_ids.append(
                    conn.execute(
                        schema.faces.insert().values(
                            photo_id=photo_id,
                            left=face.bbox.left,
                            top=face.bbox.top,
                            right=face.bbox.right,
                            bottom=face.bbox.bottom,
                            confidence=face.confidence,
                            quality=face.quality,
                            landmarks=np.ascontiguousarray(face.landmarks, np.float32).tobytes(),
                            model_id=model_id,
                            embedding=np.ascontiguousarray(face.embedding, np.float32).tobytes(),
                            thumbnail=face.thumbnail,
                            created_at=now,
                        )
                    ).inserted_primary_key[0]  # type: ignore[index]
                )
            if with_faces is not None:
                with_faces(conn)
        return PhotoWrite(photo_id, tuple(face_ids), created=True, sighting_created=True)

    def stored_face_ids(self, face_ids: Sequence[int]) -> set[int]:
        """Those of ``face_ids`` that are stored (an index lookup; no rows are read)."""
        f = schema.faces
        found: set[int] = set()
        ids = list(face_ids)
        with self.engine.connect() as conn:
            for start in range(0, len(ids), _IN_BATCH):
                query = select(f.c.id).where(f.c.id.in_(ids[start : start + _IN_BATCH]))
                found.update(int(i) for i in conn.execute(query).scalars())
        return found

    def faces(
        self, face_ids: Sequence[int], visible_to_org: int | None = None
    ) -> dict[int, FaceRecord]:
        """Stored faces by id, with provenance; unknown ids are absent.

        With ``visible_to_org``, only the sightings that organisation sees are given,
        and a face with none of them is absent, as if it did not exist."""
        if not face_ids:
            return {}
        f, s, src = schema.faces, schema.sightings, schema.sources
        with self.engine.connect() as conn:
            rows = conn.execute(select(f).where(f.c.id.in_(list(face_ids)))).all()
            photo_ids = {r.photo_id for r in rows}
            query = (
                select(s.c.photo_id, s.c.origin, s.c.page_url, s.c.collected_at, src.c.name)
                .join(src, src.c.id == s.c.source_id)
                .where(s.c.photo_id.in_(photo_ids))
                .order_by(s.c.collected_at, s.c.id)
            )
            if visible_to_org is not None:
                query = query.where(visible_to(visible_to_org))
            sight_rows = conn.execute(query).all()
        by_photo: dict[int, list[Provenance]] = {}
        for r in sight_rows:
            by_photo.setdefault(r.photo_id, []).append(
                Provenance(
                    source=r.name,
                    origin=r.origin,
                    page_url=r.page_url,
                    collected_at=utc(r.collected_at),
                )
            )
        return {
            r.id: FaceRecord(
                id=r.id,
                photo_id=r.photo_id,
                bbox=BBox(r.left, r.top, r.right, r.bottom),
                quality=r.quality,
                model_id=r.model_id,
                thumbnail=r.thumbnail,
                provenance=tuple(by_photo.get(r.photo_id, ())),
            )
            for r in rows
            if visible_to_org is None or r.photo_id in by_photo
        }

    def count_visible_faces(self, org: int) -> int:
        """Faces in photos that organisation ``org`` sees."""
        f = schema.faces
        with self.engine.connect() as conn:
            query = select(func.count()).select_from(f).where(f.c.photo_id.in_(photos_seen_by(org)))
            return int(conn.execute(query).scalar() or 0)

    def embeddings(self, face_ids: Sequence[int], dim: int) -> dict[int, np.ndarray]:
        """Stored ``(dim,)`` float32 embeddings by face id."""
        if not face_ids:
            return {}
        f = schema.faces
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(f.c.id, f.c.embedding).where(f.c.id.in_(list(face_ids)))
            ).all()
        return {r.id: np.frombuffer(r.embedding, dtype=np.float32, count=dim) for r in rows}

    def iter_embeddings(
        self, model_id: str, dim: int, *, after_id: int = 0, batch: int = 10_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(ids (n,) int64, vectors (n, dim) float32)`` batches in id order."""
        f = schema.faces
        last = after_id
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(f.c.id, f.c.embedding)
                    .where(f.c.model_id == model_id, f.c.id > last)
                    .order_by(f.c.id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            ids = np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(r.embedding for r in rows), dtype=np.float32)
            yield ids, vecs.reshape(len(rows), dim)
            last = int(ids[-1])

    def face_ids(self, model_id: str | None = None) -> np.ndarray:
        """All stored face ids (of one model if given), ``(n,)`` int64."""
        f = schema.faces
        query = select(f.c.id)
        if model_id is not None:
            query = query.where(f.c.model_id == model_id)
        with self.engine.connect() as conn:
            return np.fromiter(conn.execute(query).scalars(), dtype=np.int64)

    def model_ids(self) -> list[str]:
        """Distinct models that made the stored embeddings."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(schema.faces.c.model_id).distinct()).scalars())

    def thumbnails(self) -> set[str]:
        """The name of every thumbnail a face refers to (see :mod:`facetrace.store.blobs`)."""
        with self.engine.connect() as conn:
            return {
                t for t in conn.execute(select(schema.faces.c.thumbnail)).scalars() if t is not None
            }

    def visible_stats(self, org: int) -> Stats:
        """Row counts of what organisation ``org`` sees; ``indexed`` is the faces it sees."""
        src, photos = schema.sources, schema.photos
        with self.engine.connect() as conn:
            n_sources = conn.execute(
                select(func.count()).select_from(src).where(visible_to(org))
            ).scalar()
            n_photos = conn.execute(
                select(func.count()).select_from(photos).where(photos.c.id.in_(photos_seen_by(org)))
            ).scalar()
        faces = self.count_visible_faces(org)
        return Stats(int(n_sources or 0), int(n_photos or 0), faces, faces)

    def stats(self, indexed: int) -> Stats:
        with self.engine.connect() as conn:
            n_sources = conn.execute(select(func.count()).select_from(schema.sources)).scalar()
            n_photos = conn.execute(select(func.count()).select_from(schema.photos)).scalar()
            n_faces = conn.execute(select(func.count()).select_from(schema.faces)).scalar()
        return Stats(
            sources=int(n_sources or 0),
            photos=int(n_photos or 0),
            faces=int(n_faces or 0),
            indexed=indexed,
        )

    def near_duplicate(self, value: int, max_bits: int) -> int | None:
        """Id of a stored photo whose perceptual hash is within ``max_bits`` of ``value``.

        Candidates share a 16-bit band exactly (complete for ``max_bits <= 3``)."""
        if max_bits < 0:
            return None
        p = schema.photos
        b = phash_bands(value)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(p.c.id, p.c.phash)
                .where(
                    (p.c.phash_b0 == b[0])
                    | (p.c.phash_b1 == b[1])
                    | (p.c.phash_b2 == b[2])
                    | (p.c.phash_b3 == b[3])
                )
                .order_by(p.c.id)
                .limit(1000)
            ).all()
        best: tuple[int, int] | None = None
        for row in rows:
            d = phash_distance(value, int(row.phash, 16))
            if d <= max_bits and (best is None or d < best[0]):
                best = (d, row.id)
        return best[1] if best else None

    # --- jobs ----------------------------------------------------------------

    def create_job(self, source_id: int, kind: str, spec: dict[str, Any], now: datetime) -> int:
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    schema.jobs.insert().values(
                        source_id=source_id,
                        kind=kind,
                        spec=json.dumps(spec, sort_keys=True),
                        status=JobStatus.RUNNING.value,
                        created_at=now,
                        updated_at=now,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )

    def set_job_status(
        self, job_id: int, status: str, now: datetime, summary: dict[str, Any] | None = None
    ) -> None:
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if summary is not None:
            values["summary"] = json.dumps(summary, sort_keys=True)
        with self.engine.begin() as conn:
            conn.execute(schema.jobs.update().where(schema.jobs.c.id == job_id).values(**values))

    def record_job_item(
        self, job_id: int, key: str, status: str, error: str | None, now: datetime
    ) -> None:
        """Record one item's outcome (the latest outcome wins on a resumed job).

        A job a takedown deleted meanwhile (with its source's other traces) records
        nothing more: its items name a source that is gone."""
        ji = schema.job_items
        try:
            with self.engine.begin() as conn:
                live = conn.execute(
                    select(schema.jobs.c.id)
                    .where(schema.jobs.c.id == job_id)
                    .with_for_update(read=True)
                ).scalar()
                if live is None:
                    return
                updated = conn.execute(
                    ji.update()
                    .where(ji.c.job_id == job_id, ji.c.key == key)
                    .values(status=status, error=error, at=now)
                ).rowcount
                if not updated:
                    conn.execute(
                        ji.insert().values(
                            job_id=job_id, key=key, status=status, error=error, at=now
                        )
                    )
        except IntegrityError:
            if self.job(job_id) is not None:  # not the deleted job: a real fault
                raise

    def job_done_keys(self, job_id: int) -> set[str]:
        """Keys of the job's items that need no retry (everything but errors)."""
        ji = schema.job_items
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(ji.c.key).where(ji.c.job_id == job_id, ji.c.status != "error")
                ).scalars()
            )

    def job(self, job_id: int) -> JobRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    schema.jobs,
                    schema.sources.c.name.label("source"),
                    schema.sources.c.owner_org.label("owner_org"),
                )
                .join(schema.sources, schema.sources.c.id == schema.jobs.c.source_id)
                .where(schema.jobs.c.id == job_id)
            ).first()
            if row is None:
                return None
            counts: dict[str, int] = dict(
                conn.execute(
                    select(schema.job_items.c.status, func.count())
                    .where(schema.job_items.c.job_id == job_id)
                    .group_by(schema.job_items.c.status)
                ).all()
            )
            errors = conn.execute(
                select(schema.job_items.c.key, schema.job_items.c.error)
                .where(
                    schema.job_items.c.job_id == job_id,
                    schema.job_items.c.status.in_(["error", "refused"]),
                )
                .order_by(schema.job_items.c.id)
            ).all()
        return _job(row._mapping, counts, [(e.key, e.error or "") for e in errors])

    def jobs(self, limit: int = 50, org: int | None = None) -> list[JobRecord]:
        """The latest jobs, of organisation ``org``'s own sources when given."""
        j, src = schema.jobs, schema.sources
        query = select(j.c.id).order_by(j.c.id.desc()).limit(limit)
        if org is not None:
            query = query.join(src, src.c.id == j.c.source_id).where(src.c.owner_org == org)
        with self.engine.connect() as conn:
            ids = conn.execute(query).scalars().all()
        return [j for j in (self.job(i) for i in ids) if j is not None]

    # --- events and errors -------------------------------------------------

    def record_error(self, source_id: int | None, item: str, error: str, at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                schema.ingest_errors.insert().values(
                    source_id=source_id, item=item, error=error, at=at
                )
            )


def _phash_columns(value: int | None) -> dict[str, Any]:
    if value is None:
        return {"phash": None}
    b = phash_bands(value)
    return {
        "phash": phash_hex(value),
        "phash_b0": b[0],
        "phash_b1": b[1],
        "phash_b2": b[2],
        "phash_b3": b[3],
    }


def _job(row: Any, counts: dict[str, int], errors: list[tuple[str, str]]) -> JobRecord:
    return JobRecord(
        id=row["id"],
        source=row["source"],
        kind=row["kind"],
        spec=json.loads(row["spec"]),
        status=row["status"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
        item_counts={str(k): int(v) for k, v in counts.items()},
        errors=tuple(errors),
        summary=json.loads(row["summary"]) if row["summary"] else None,
        owner_org=row["owner_org"],
    )


def _source(row: Any) -> SourceRecord:
    return SourceRecord(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        lawful_basis=row["lawful_basis"],
        jurisdiction=row["jurisdiction"],
        status=row["status"],
        policy=json.loads(row["policy"] or "{}"),
        created_at=utc(row["created_at"]),
        owner_org=row["owner_org"],
        visibility=row["visibility"],
    )
