"""Secure removal of deleted gallery data from everything derived from it.

After rows are deleted (one transaction, :class:`~facetrace.governance.repository.Deleted`),
:func:`finish_purge` removes the faces from the vector index and compacts and saves it
(so no vector file keeps them), overwrites and unlinks their thumbnails, and scrubs the
database files (``VACUUM`` + ``wal_checkpoint(TRUNCATE)``). It runs the same steps
even when nothing was deleted, so the work done does not reveal whether it was.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

import numpy as np

from facetrace import faults
from facetrace.governance.audit import canonical_json
from facetrace.governance.repository import Deleted, GovernanceStore
from facetrace.identity.repository import IdentityStore

if TYPE_CHECKING:
    from facetrace.app import FaceTrace

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What :func:`finish_purge` removed; ``storage_scrubbed`` False if the WAL stayed busy."""

    deleted: Deleted
    index_removed: int
    thumbnails_wiped: int
    storage_scrubbed: bool

    @property
    def ids_sha256(self) -> str:
        return ids_digest(self.deleted)


def ids_digest(deleted: Deleted) -> str:
    """SHA-256 hex of the canonical JSON of the sorted removed ids.

    The JSON is ``{"faces": [...], "photos": [...], "sightings": [...]}``.
    """
    return hashlib.sha256(
        canonical_json(
            {
                "faces": sorted(deleted.face_ids),
                "photos": sorted(deleted.photo_ids),
                "sightings": sorted(deleted.sighting_ids),
            }
        ).encode()
    ).hexdigest()


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


def finish_purge(engine: FaceTrace, deleted: Deleted) -> PurgeResult:
    """Remove ``deleted`` faces from the index (compacted, saved), thumbnails and DB files."""
    removed = 0
    if deleted.face_ids:
        removed = engine.index.remove(np.asarray(deleted.face_ids, dtype=np.int64))
    rebuild = getattr(engine.index, "rebuild", None)
    if callable(rebuild):
        rebuild()  # drops removed vectors from the vector store and structures
    engine.index.save()
    wiped = 0
    home = engine.home.resolve()
    for rel in deleted.thumbnails:
        path = (home / rel).resolve()
        if path.is_relative_to(home) and wipe_file(path):
            wiped += 1
    IdentityStore(engine.store.engine).drop_empty()  # no person left with no face
    scrubbed = GovernanceStore(engine.store.engine).scrub()
    return PurgeResult(deleted, removed, wiped, scrubbed)


def holds_writers(
    func: Callable[Concatenate[FaceTrace, P], R],
) -> Callable[Concatenate[FaceTrace, P], R]:
    """Run a purge holding the writers' lock shared (:meth:`FaceTrace.writing`), so a
    process opening the gallery meanwhile does not re-add what it is deleting."""

    @functools.wraps(func)
    def wrapper(engine: FaceTrace, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with engine.writing():
            return func(engine, *args, **kwargs)

    return wrapper
