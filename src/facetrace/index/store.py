"""Row-addressed storage of raw float32 vectors, in memory or in a memory-mapped file.

The FAISS backend keeps every vector it was given here, exactly, so it can re-rank the
candidates of a compressed structure (HNSW over 8-bit codes, IVF-PQ) with true L2
distances and rebuild structures without re-embedding. Rows are append-only: row ``r``
always holds the ``r``-th vector appended; deletion is the caller's business.

A file store is a headerless file of ``rows x dim`` float32 values (native byte order),
written with ordinary appends and read through a read-only ``numpy.memmap``, so a large
gallery costs page cache, not process heap.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from facetrace.index.base import FloatArray

_ROW_ALIGN = 4  # float32 bytes


class VectorStore:
    """Append-only ``(rows, dim)`` float32 storage.

    ``path`` is ``None`` for an in-memory store. For a file store, ``rows`` says how many
    rows of an existing file are valid. Rows behind them are a crash's leftovers, or
    another process's appends not yet saved: opening leaves them alone, and only
    :meth:`claim` (by the one process allowed to write) cuts them off and appends.
    """

    def __init__(self, dim: int, path: Path | None = None, rows: int = 0) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        self._dim = dim
        self._path = path
        self._rows = 0
        self._mem = np.empty((0, dim), dtype=np.float32)
        self._view: npt.NDArray[np.float32] | None = None
        self._fh: BinaryIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            row_bytes = dim * _ROW_ALIGN
            if path.exists():
                size = path.stat().st_size
                if size < rows * row_bytes:
                    raise ValueError(f"{path} holds {size // row_bytes} rows, expected {rows}")
            elif rows:
                raise ValueError(f"{path} is missing")
            self._rows = rows

    def claim(self) -> None:
        """Become the file's writer: cut off rows behind ``rows`` and open for appends.
        The caller holds the index's writer lock (no other process appends)."""
        if self._path is None or self._fh is not None:
            return
        row_bytes = self._dim * _ROW_ALIGN
        with open(self._path, "ab") as fh:  # create it if absent
            fh.truncate(self._rows * row_bytes)
        self._fh = open(self._path, "ab")  # noqa: SIM115 - held open for appends until close()

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def rows(self) -> int:
        """Number of rows written."""
        return self._rows

    @property
    def path(self) -> Path | None:
        return self._path

    def append(self, vectors: FloatArray) -> int:
        """Append ``(n, dim)`` float32 rows; return the row number of the first."""
        first = self._rows
        if self._path is not None:
            if self._fh is None:
                raise RuntimeError("append to a file store before claim()")
            self._fh.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
            self._fh.flush()
        else:
            need = first + vectors.shape[0]
            if need > self._mem.shape[0]:
                grown = np.empty((max(need, 2 * self._mem.shape[0], 1024), self._dim), np.float32)
                grown[:first] = self._mem[:first]
                self._mem = grown
            self._mem[first:need] = vectors
        self._rows += vectors.shape[0]
        return first

    def view(self, rows: int | None = None) -> FloatArray:
        """Return a read-only ``(rows, dim)`` array of the first ``rows`` rows (default all).

        The array stays valid after later appends (it is a snapshot of those rows).
        """
        n = self._rows if rows is None else rows
        if self._path is None:
            out = self._mem[:n]
            out.flags.writeable = False
            return out
        if self._view is None or self._view.shape[0] < n:
            if self._fh is not None:
                self._fh.flush()
            if self._rows == 0:
                return np.empty((0, self._dim), dtype=np.float32)
            mapped = np.memmap(self._path, np.float32, "r", shape=(self._rows, self._dim))
            # A plain array over the mapping (which it keeps open): indexing a memmap
            # subclass costs a few microseconds a call, and a search makes several.
            self._view = np.asarray(mapped)
        return self._view[:n]

    def take(self, rows: npt.NDArray[np.int64]) -> FloatArray:
        """Gather rows (any shape of row numbers, all valid) -> ``rows.shape + (dim,)``."""
        return self.view()[rows.ravel()].reshape(*rows.shape, self._dim)

    def sync(self) -> None:
        """Flush appended rows to stable storage (file stores)."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def nbytes_on_disk(self) -> int:
        return self._rows * self._dim * _ROW_ALIGN if self._path is not None else 0

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._view = None
