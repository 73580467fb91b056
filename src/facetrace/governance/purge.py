"""Secure removal of deleted gallery data from everything derived from it.

After rows are deleted (one transaction, :class:`~facetrace.governance.repository.Deleted`),
:func:`finish_purge` removes the faces from the vector index and compacts and saves it
(so no vector file keeps them), deletes their thumbnails from the blob store (a file is
overwritten and unlinked, a ``blobs`` row deleted), and scrubs the database files
(``VACUUM`` + ``wal_checkpoint(TRUNCATE)``, which also clears deleted ``blobs`` rows).
It runs the same steps even when nothing was deleted, so the work done does not reveal
whether it was.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

import numpy as np

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


def finish_purge(engine: FaceTrace, deleted: Deleted) -> PurgeResult:
    """Remove ``deleted`` faces from the index (compacted, saved), the blob store and the
    DB files. The blobs go before the scrub, so a database holding them is scrubbed too."""
    removed = 0
    if deleted.face_ids:
        removed = engine.index.remove(np.asarray(deleted.face_ids, dtype=np.int64))
    rebuild = getattr(engine.index, "rebuild", None)
    if callable(rebuild):
        rebuild()  # drops removed vectors from the vector store and structures
    engine.index.save()
    wiped = engine.blobs.delete(deleted.thumbnails)
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
