"""Index maintenance the CLI drives: stats, rebuild, and migration between backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facetrace.config import IndexBackend, Settings
from facetrace.errors import UsageError
from facetrace.index.base import MaintainableIndex
from facetrace.index.factory import open_index


def index_stats(settings: Settings, dim: int = 128, name: str = "faces") -> dict[str, object]:
    """Open the configured index and return its :meth:`stats`."""
    index = open_index(settings, dim, name)
    try:
        return index.stats()
    finally:
        index.close()


def rebuild_index(settings: Settings, dim: int = 128, name: str = "faces") -> dict[str, object]:
    """Compact and rebuild the configured index, save it, and return its stats."""
    index = open_index(settings, dim, name)
    try:
        index.rebuild()
        index.save()
        return index.stats()
    finally:
        index.close()


def copy_vectors(source: MaintainableIndex, target: MaintainableIndex, batch: int = 65_536) -> int:
    """Add every vector of ``source`` that ``target`` lacks (no re-embedding); return how
    many ``target`` holds afterwards. An interrupted copy resumes where it stopped."""
    present = target.ids()
    moved = int(present.size)
    for ids, vectors in source.export(batch):
        fresh = ~np.isin(ids, present)
        if fresh.any():
            target.add(ids[fresh], vectors[fresh])
        moved += int(fresh.sum())
    target.wait_until_built()
    target.save()
    return moved


def migrate_index(
    settings: Settings,
    to: IndexBackend,
    source: IndexBackend | None = None,
    vectors_file: Path | None = None,
    dim: int = 128,
    name: str = "faces",
) -> int:
    """Copy the gallery into backend ``to``; return the number of vectors copied.

    Vectors come from the ``source`` backend's index (default: the configured one), or
    from ``vectors_file``, an ``.npz`` with ``ids`` ``(n,)`` int64 and ``vectors``
    ``(n, dim)`` float32. The target must be empty or hold part of the same gallery (a
    migration that was interrupted, which this resumes), so a migration cannot mix
    galleries.
    """
    source = source or settings.index_backend
    if vectors_file is None and source is to:
        raise UsageError(f"the index is already on {to.value}; pass --from or --vectors")
    target = open_index(settings.model_copy(update={"index_backend": to}), dim, name)
    try:
        if vectors_file is not None:
            with np.load(vectors_file) as data:
                ids, vectors = data["ids"], data["vectors"]
            fresh = ~np.isin(ids, _refuse_other_gallery(target, ids, to))
            ids, vectors = ids[fresh], vectors[fresh]
            for start in range(0, ids.shape[0], 65_536):
                target.add(ids[start : start + 65_536], vectors[start : start + 65_536])
            target.wait_until_built()
            target.save()
            return target.count()
        origin = open_index(settings.model_copy(update={"index_backend": source}), dim, name)
        try:
            _refuse_other_gallery(target, origin.ids(), to)
            return copy_vectors(origin, target)
        finally:
            origin.close()
    finally:
        target.close()


def _refuse_other_gallery(
    target: MaintainableIndex, ids: np.ndarray, to: IndexBackend
) -> np.ndarray:
    """The ids ``target`` holds already; raises if any is not among ``ids``."""
    held = target.ids()
    stray = np.setdiff1d(held, ids)
    if stray.size:
        raise UsageError(
            f"the {to.value} index already holds {held.size} vectors, {stray.size} of them "
            "not in this gallery; migrate into an empty index"
        )
    return held
