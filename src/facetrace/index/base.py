"""The ``VectorIndex`` protocol: the one seam between the engine and its vector store.

Array contracts (FAISS conventions, batch first):

- ``ids``: ``(n,)`` int64, non-negative, unique. They are the store's face ids.
- ``vectors`` / ``queries``: ``(n, d)`` float32, C-contiguous, ``d == index.dim``.
  Descriptors are used as they come (dlib's are *not* unit length); distances are
  Euclidean (L2, not squared).
- ``search`` returns ``(distances, ids)``, each ``(n, k)``: distances float32 in
  ascending order, ids int64; where fewer than ``k`` results exist the row is
  padded with distance ``+inf`` and id ``-1`` (the "no result" sentinel).

Removal is immediate: once ``remove`` returns, the removed ids are never
returned by ``search`` (takedowns depend on it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]

NO_RESULT = -1


@runtime_checkable
class VectorIndex(Protocol):
    """A k-nearest-neighbour index of face embeddings keyed by face id."""

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the vectors."""
        ...

    def add(self, ids: IdArray, vectors: FloatArray) -> None:
        """Add ``(n,)`` ids with their ``(n, d)`` vectors. Re-adding an id is an error."""
        ...

    def remove(self, ids: IdArray) -> int:
        """Remove ids; unknown ids are ignored. Returns how many were removed."""
        ...

    def search(self, queries: FloatArray, k: int) -> tuple[FloatArray, IdArray]:
        """Return ``(distances, ids)`` of shape ``(n, k)``; see module docstring."""
        ...

    def count(self) -> int:
        """Number of live (not removed) vectors."""
        ...

    def ids(self) -> IdArray:
        """All live ids, ``(count,)`` int64, in no particular order."""
        ...

    def save(self) -> None:
        """Persist to the backend's storage (atomically where the backend is a file)."""
        ...

    def close(self) -> None:
        """Release resources; the object must not be used afterwards."""
        ...


@runtime_checkable
class MaintainableIndex(VectorIndex, Protocol):
    """A :class:`VectorIndex` that can also be inspected, rebuilt and exported.

    Every backend implements it; the CLI's ``index stats|rebuild|migrate`` use it.
    """

    def stats(self) -> dict[str, object]:
        """Backend facts: at least ``backend``, ``count`` and ``dim``; sizes in bytes."""
        ...

    def rebuild(self) -> None:
        """Reclaim removed vectors and rebuild search structures, synchronously."""
        ...

    def wait_until_built(self, timeout: float | None = None) -> bool:
        """Wait for background work (training, rebuilds); True when none is running."""
        ...

    def export(self, batch: int = 65_536) -> Iterator[tuple[IdArray, FloatArray]]:
        """Yield ``(ids, vectors)`` batches of every live vector, as they were added."""
        ...


def check_vectors(vectors: object, dim: int, name: str = "vectors") -> FloatArray:
    """Return ``vectors`` as a C-contiguous ``(n, dim)`` float32 array or raise ValueError."""
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_ids(ids: object, n: int | None = None) -> IdArray:
    """Return ``ids`` as a ``(n,)`` int64 array of non-negative values or raise ValueError."""
    arr = np.ascontiguousarray(ids, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"ids must have shape (n,), got {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"expected {n} ids, got {arr.shape[0]}")
    if arr.size and arr.min() < 0:
        raise ValueError("ids must be non-negative")
    return arr


def empty_result(n: int, k: int) -> tuple[FloatArray, IdArray]:
    """Return an all-sentinel ``(n, k)`` result."""
    return (
        np.full((n, k), np.inf, dtype=np.float32),
        np.full((n, k), NO_RESULT, dtype=np.int64),
    )
