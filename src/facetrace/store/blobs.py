"""Blobs: the bytes a gallery keeps beside its rows, behind one interface.

A blob's name is a relative POSIX path whose first part says what it is:

- ``thumbs/<sha[:2]>/<sha>_<i>.jpg``: the thumbnail of face ``i`` of the photo with that
  SHA-256 (a JPEG of ``thumbnail_px`` a side, a few KB); ``faces.thumbnail`` holds it;
- ``calibration/<table>.json``: a model's distance -> false-match-rate table made by
  ``facetrace eval calibrate`` (:mod:`facetrace.evaluation.calibration`), which every
  process that searches must read.
 :func:`open_blobs` is the one place that
picks where blobs live, from :attr:`Settings.blob_store <facetrace.config.Settings>`
(why: docs/blobs.md):

- :class:`FolderBlobs`: files at ``<blob_dir>/<name>`` (``blob_dir`` defaults to the
  gallery home, where thumbnails have always been). The default with SQLite; with
  several nodes, a folder every node mounts (NFS).
- :class:`DatabaseBlobs`: rows of the ``blobs`` table of the metadata database. The
  default with PostgreSQL: every node already reaches it, an ingest writes a photo's
  thumbnails in the transaction that stores its faces, and a takedown deletes them
  from the database it deletes the faces from (and scrubs with it).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Protocol

from sqlalchemy import Connection, Engine, delete, select

from facetrace import faults
from facetrace.config import BlobStoreKind, Settings
from facetrace.store import schema

THUMBS = "thumbs"
"""First part of every thumbnail's name (and the folder that holds them)."""

CALIBRATION = "calibration"
"""First part of a calibration table's name."""

KINDS = (THUMBS, CALIBRATION)
"""What a blob's name may start with."""

_BATCH = 500


def is_name(name: str) -> bool:
    """Whether ``name`` is a blob's name: ``<kind>/...``, relative, no ``..`` part."""
    path = PurePosixPath(name)
    parts = path.parts
    return (
        not path.is_absolute()
        and len(parts) >= 2
        and parts[0] in KINDS
        and not any(p in ("", ".", "..") for p in parts)
        and "\\" not in name
    )


def thumbnail_name(sha256: str, i: int) -> str:
    """The name of the thumbnail of face ``i`` of the photo with hex SHA-256 ``sha256``."""
    return f"{THUMBS}/{sha256[:2]}/{sha256}_{i}.jpg"


def _checked(blobs: Mapping[str, bytes]) -> list[str]:
    bad = [n for n in blobs if not is_name(n)]
    if bad:
        raise ValueError(f"not a blob name: {bad[0]!r} (expected one of {KINDS} then /...)")
    return sorted(blobs)


class BlobStore(Protocol):
    """Named blobs, where every node of a gallery reaches them.

    Names are checked with :func:`is_name`; a name that is not a blob's is never read
    nor deleted (``get`` gives None, ``delete`` skips it).
    """

    def put(self, blobs: Mapping[str, bytes], conn: Connection | None = None) -> None:
        """Store each blob under its name, replacing any blob of that name. ``conn``: an
        open transaction of the metadata database; a store that lives in it writes in
        it (the blobs commit, or roll back, with the rows that name them), a folder
        writes its files at once. Raises ValueError for a name that is not a blob's."""
        ...

    def get(self, name: str) -> bytes | None:
        """The blob's bytes, or None when there is none."""
        ...

    def delete(self, names: Iterable[str]) -> int:
        """Delete blobs, leaving no copy of their bytes where this store can (a file is
        overwritten with zeros and flushed before it is unlinked; a database row is
        deleted, and :meth:`GovernanceStore.scrub
        <facetrace.governance.repository.GovernanceStore.scrub>` clears the files).
        Returns how many existed."""
        ...

    def names(self, kind: str = THUMBS) -> set[str]:
        """The names of every stored blob of ``kind`` (a folder's half-written files
        included), for finding the ones no row refers to."""
        ...

    def locate(self, name: str) -> str:
        """Where a person finds the blob: a file's path, or ``database:<name>``."""
        ...


def wipe_file(path: Path) -> bool:
    """Overwrite a file with zeros, flush it to disk, then unlink it. False if absent."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    faults.point()
    with open(path, "r+b") as fh:
        fh.write(b"\0" * size)
        fh.flush()
        os.fsync(fh.fileno())
    faults.point()  # zeroed, not yet unlinked
    path.unlink(missing_ok=True)
    return True


class FolderBlobs:
    """Blobs as files: ``<root>/<name>``. Each file is written under a name of its own
    and renamed into place, so a reader never sees half of one (and two nodes writing
    the same blob into a shared folder do not mix their bytes)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, name: str) -> Path | None:
        """The file of blob ``name``, or None if the name is not a blob's or leads out
        of its kind's folder (through a link)."""
        if not is_name(name):
            return None
        path = self.root / name
        kind = (self.root / PurePosixPath(name).parts[0]).resolve()
        return path if path.resolve().is_relative_to(kind) else None

    def put(self, blobs: Mapping[str, bytes], conn: Connection | None = None) -> None:
        for name in _checked(blobs):
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            tmp.write_bytes(blobs[name])
            faults.point()  # written, not yet in place
            tmp.replace(path)

    def get(self, name: str) -> bytes | None:
        path = self._path(name)
        if path is None or not path.is_file():
            return None
        try:
            return path.read_bytes()
        except FileNotFoundError:  # deleted meanwhile
            return None

    def delete(self, names: Iterable[str]) -> int:
        wiped = 0
        for name in names:
            path = self._path(name)
            if path is not None and wipe_file(path):
                wiped += 1
        return wiped

    def names(self, kind: str = THUMBS) -> set[str]:
        folder = self.root / kind
        if kind not in KINDS or not folder.is_dir():
            return set()
        return {p.relative_to(self.root).as_posix() for p in folder.rglob("*") if p.is_file()}

    def locate(self, name: str) -> str:
        return str(self.root / name)


class DatabaseBlobs:
    """Blobs as rows of the metadata database's ``blobs`` table (name, data, time)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, blobs: Mapping[str, bytes], conn: Connection | None = None) -> None:
        names = _checked(blobs)
        if not names:
            return
        if conn is None:
            with self.engine.begin() as own:
                self._put(own, names, blobs)
        else:
            self._put(conn, names, blobs)

    @staticmethod
    def _put(conn: Connection, names: list[str], blobs: Mapping[str, bytes]) -> None:
        b = schema.blobs
        now = datetime.now(UTC)
        for chunk in _chunks(names):
            # Replaces a blob of the same name (one a crashed purge left behind).
            conn.execute(delete(b).where(b.c.name.in_(chunk)))
            conn.execute(
                b.insert(), [{"name": n, "data": blobs[n], "created_at": now} for n in chunk]
            )

    def get(self, name: str) -> bytes | None:
        if not is_name(name):
            return None
        b = schema.blobs
        with self.engine.connect() as conn:
            data = conn.execute(select(b.c.data).where(b.c.name == name)).scalar()
        return None if data is None else bytes(data)

    def delete(self, names: Iterable[str]) -> int:
        b = schema.blobs
        wanted = sorted({n for n in names if is_name(n)})
        deleted = 0
        if not wanted:
            return 0
        with self.engine.begin() as conn:
            for chunk in _chunks(wanted):
                deleted += conn.execute(delete(b).where(b.c.name.in_(chunk))).rowcount
        return deleted

    def names(self, kind: str = THUMBS) -> set[str]:
        b = schema.blobs
        with self.engine.connect() as conn:
            query = select(b.c.name).where(b.c.name.startswith(f"{kind}/", autoescape=True))
            return set(conn.execute(query).scalars())

    def locate(self, name: str) -> str:
        return f"database:{name}"


def _chunks(names: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(names), _BATCH):
        yield names[start : start + _BATCH]


def blob_store_kind(settings: Settings, engine: Engine) -> BlobStoreKind:
    """``settings.blob_store``, with ``auto`` resolved: ``folder`` when the metadata is
    in SQLite (one machine), ``database`` when it is in a server every node reaches."""
    if settings.blob_store is not BlobStoreKind.AUTO:
        return settings.blob_store
    return BlobStoreKind.FOLDER if engine.dialect.name == "sqlite" else BlobStoreKind.DATABASE


def open_blobs(settings: Settings, engine: Engine) -> BlobStore:
    """The blob store ``settings`` choose, over the metadata database ``engine`` (the
    one place the choice is made; see :func:`blob_store_kind`)."""
    if blob_store_kind(settings, engine) is BlobStoreKind.DATABASE:
        return DatabaseBlobs(engine)
    return FolderBlobs(settings.blob_dir or settings.home)
