"""Exact brute-force index in NumPy: the test oracle, and the choice for tiny galleries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from facetrace.index.base import (
    FloatArray,
    IdArray,
    check_ids,
    check_vectors,
    empty_result,
)


class ExactIndex:
    """Brute-force L2 search over all live vectors.

    ``path`` (optional) is an ``.npz`` file used by :meth:`save`; it is loaded
    when it exists.
    """

    def __init__(self, dim: int, path: Path | None = None) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        self._dim = dim
        self._path = path
        self._ids = np.empty((0,), dtype=np.int64)
        self._vectors = np.empty((0, dim), dtype=np.float32)
        if path is not None and path.exists():
            with np.load(path) as data:
                self._ids = data["ids"].astype(np.int64)
                self._vectors = data["vectors"].astype(np.float32)
            if self._vectors.shape[1:] != (dim,):
                raise ValueError(f"{path} holds vectors of shape {self._vectors.shape}")

    @property
    def dim(self) -> int:
        return self._dim

    def add(self, ids: IdArray, vectors: FloatArray) -> None:
        vecs = check_vectors(vectors, self._dim)
        new_ids = check_ids(ids, vecs.shape[0])
        if np.unique(new_ids).size != new_ids.size or np.isin(new_ids, self._ids).any():
            raise ValueError("ids already present in the index")
        self._ids = np.concatenate([self._ids, new_ids])
        self._vectors = np.concatenate([self._vectors, vecs])

    def remove(self, ids: IdArray) -> int:
        drop = np.isin(self._ids, check_ids(ids))
        removed = int(drop.sum())
        if removed:
            self._ids = self._ids[~drop]
            self._vectors = self._vectors[~drop]
        return removed

    def search(self, queries: FloatArray, k: int) -> tuple[FloatArray, IdArray]:
        q = check_vectors(queries, self._dim, "queries")
        if k <= 0:
            raise ValueError("k must be positive")
        distances, ids = empty_result(q.shape[0], k)
        if self._ids.size == 0 or q.shape[0] == 0:
            return distances, ids
        # ||q - v||^2 = ||q||^2 - 2 q.v + ||v||^2, in float64 for a stable oracle.
        q64 = q.astype(np.float64)
        v64 = self._vectors.astype(np.float64)
        d2 = (q64**2).sum(1)[:, None] - 2.0 * q64 @ v64.T + (v64**2).sum(1)[None, :]
        np.maximum(d2, 0.0, out=d2)
        kk = min(k, self._ids.size)
        part = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
        rows = np.arange(q.shape[0])[:, None]
        order = np.lexsort((self._ids[part], d2[rows, part]), axis=1)
        best = part[rows, order]
        distances[:, :kk] = np.sqrt(d2[rows, best]).astype(np.float32)
        ids[:, :kk] = self._ids[best]
        return distances, ids

    def count(self) -> int:
        return int(self._ids.size)

    def ids(self) -> IdArray:
        return self._ids.copy()

    def save(self) -> None:
        if self._path is None:
            return
        tmp = self._path.with_name(self._path.name + ".tmp.npz")
        np.savez(tmp, ids=self._ids, vectors=self._vectors)
        tmp.replace(self._path)

    def close(self) -> None:
        pass

    def stats(self) -> dict[str, object]:
        disk = self._path.stat().st_size if self._path is not None and self._path.exists() else 0
        return {
            "backend": "exact",
            "structure": "flat",
            "dim": self._dim,
            "count": self.count(),
            "resident_bytes": int(self._vectors.nbytes + self._ids.nbytes),
            "disk_bytes": disk,
        }

    def rebuild(self) -> None:
        """Nothing to rebuild: removal already compacts."""

    def wait_until_built(self, timeout: float | None = None) -> bool:
        return True

    def export(self, batch: int = 65_536) -> Iterator[tuple[IdArray, FloatArray]]:
        for start in range(0, self._ids.size, batch):
            stop = start + batch
            yield self._ids[start:stop].copy(), self._vectors[start:stop].copy()
