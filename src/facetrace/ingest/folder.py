"""Local files and folders as photo tasks."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from facetrace.errors import NotFoundError
from facetrace.ingest.tasks import IMAGE_SUFFIXES, PhotoTask


def iter_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Files named explicitly, and image files (by suffix) under folders, recursively,
    in sorted order. Hidden files and folders are skipped. Raises NotFoundError for a
    path that does not exist."""
    for path in paths:
        if not path.exists():
            raise NotFoundError(f"{path} does not exist")
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                        continue
                    yield Path(root) / name
        else:
            yield path


def folder_tasks(paths: Sequence[Path], clock: Callable[[], datetime]) -> Iterator[PhotoTask]:
    """One :class:`PhotoTask` per file; ``origin`` is the absolute path."""
    for file in iter_files(paths):
        absolute = str(file.resolve())
        yield PhotoTask(key=str(file), origin=absolute, collected_at=clock(), path=absolute)
