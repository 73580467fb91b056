"""Units of work of the ingest pipeline, and the worker function that runs them.

:class:`PhotoTask` and :class:`PhotoAnalysis` are plain picklable values: a task
can be analysed in this process, in a worker process, or on another machine,
and only the result travels back to be written to the store.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from facetrace.config import Settings
from facetrace.errors import FaceTraceError
from facetrace.vision.analyzer import AnalyzedFace, FaceAnalyzer, build_analyzer
from facetrace.vision.imaging import decode_image, read_image_bytes
from facetrace.vision.phash import phash

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
    | {".heic", ".heif", ".hif", ".avif"}
)


@dataclass(frozen=True, slots=True)
class PhotoTask:
    """One photo to ingest: its bytes (or a local path) and where it was found.

    ``key`` names the item in errors and progress; ``origin`` is the file path or
    image URL stored as provenance; ``collected_at`` is UTC.
    """

    key: str
    origin: str
    collected_at: datetime
    page_url: str | None = None
    path: str | None = None
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """An item refused before analysis (robots.txt, deny list, scope, fetch error...)."""

    key: str
    error: str


@dataclass(frozen=True, slots=True)
class PhotoAnalysis:
    """What a worker found in a photo; ``error`` is set instead when it failed.

    ``timings`` are seconds per stage: ``decode``, ``detect`` (detection and
    landmarks), ``embed`` (chips and descriptors), ``describe`` (quality and
    thumbnails).
    """

    key: str
    sha256: str = ""
    width: int = 0
    height: int = 0
    format: str = ""
    byte_size: int = 0
    faces: tuple[AnalyzedFace, ...] = ()
    phash: int | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def task_bytes(task: PhotoTask, max_bytes: int) -> bytes:
    """The task's image bytes, read from its path if needed (byte cap enforced)."""
    if task.data is not None:
        return task.data
    if task.path is None:
        raise ValueError("a PhotoTask needs data or a path")
    return read_image_bytes(Path(task.path), max_bytes)


def analyze_task(
    task: PhotoTask, analyzer: FaceAnalyzer, settings: Settings, data: bytes | None = None
) -> PhotoAnalysis:
    """Decode and analyse one photo. Never raises for bad input: errors come back in
    :attr:`PhotoAnalysis.error` as one line."""
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        raw = data if data is not None else task_bytes(task, settings.max_image_bytes)
        image = decode_image(
            raw, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
        )
        t1 = time.perf_counter()
        timings["decode"] = t1 - t0
        faces = analyzer.analyze(image.pixels, timings=timings)
        perceptual = phash(image.pixels)
    except FaceTraceError as exc:
        return PhotoAnalysis(key=task.key, error=str(exc), timings=timings)
    except MemoryError:
        return PhotoAnalysis(key=task.key, error="out of memory decoding this image")
    return PhotoAnalysis(
        key=task.key,
        sha256=image.sha256,
        width=image.width,
        height=image.height,
        format=image.format,
        byte_size=image.byte_size,
        faces=tuple(faces),
        phash=perceptual,
        timings=timings,
    )


# --- worker-process side ------------------------------------------------------

_worker: tuple[FaceAnalyzer, Settings] | None = None


def init_worker(settings_json: str) -> None:
    """Process-pool initialiser: build this process's analyzer (models load on first use)."""
    global _worker
    # One BLAS/OpenMP thread per worker process: the pool is the parallelism.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    settings = Settings.model_validate_json(settings_json)
    _worker = (build_analyzer(settings), settings)


def run_in_worker(task: PhotoTask, data: bytes | None) -> PhotoAnalysis:
    """Analyse ``task`` with the process's analyzer (see :func:`init_worker`)."""
    if _worker is None:
        raise RuntimeError("worker not initialised")
    analyzer, settings = _worker
    return analyze_task(task, analyzer, settings, data)
