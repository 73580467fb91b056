"""Where photo analyses run: worker processes on this machine, or a Ray cluster.

The pipeline reads, hashes and commits on the driver; only the analysis of a photo
(decode, detect, embed, describe) is handed to an :class:`AnalysisExecutor`, which
answers with a :class:`concurrent.futures.Future` per photo. :func:`open_executor`
is the one place that picks the implementation.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from typing import Protocol

from facetrace.config import Settings
from facetrace.ingest.tasks import PhotoAnalysis, PhotoTask, init_worker, run_in_worker

TASKS_PER_WORKER = 4
"""Analyses kept in flight per worker (process or cluster CPU), so none waits for work."""


class AnalysisExecutor(Protocol):
    """Runs :func:`facetrace.ingest.tasks.analyze_task` somewhere else.

    A future's result is the :class:`PhotoAnalysis`; if the analysis could not run at
    all (its worker died and could not be replaced), the future holds that exception.
    """

    @property
    def capacity(self) -> int:
        """How many analyses to keep in flight."""
        ...

    def submit(self, task: PhotoTask, data: bytes) -> Future[PhotoAnalysis]:
        """Start analysing ``task``, whose bytes (already read and hashed) are ``data``."""
        ...


class LocalProcesses:
    """``workers`` spawned processes on this machine, each with its own analyzer."""

    def __init__(self, pool: ProcessPoolExecutor, workers: int) -> None:
        self._pool = pool
        self._workers = workers

    @property
    def capacity(self) -> int:
        return self._workers * TASKS_PER_WORKER

    def submit(self, task: PhotoTask, data: bytes) -> Future[PhotoAnalysis]:
        return self._pool.submit(run_in_worker, task, data)


@contextmanager
def open_executor(
    settings: Settings, workers: int, cluster: str | None = None, cluster_nodes: int | None = None
) -> Iterator[AnalysisExecutor]:
    """Worker processes here (``cluster`` None), or the Ray cluster at ``cluster``
    (``auto`` or ``ray://HOST:PORT``, see :mod:`facetrace.ingest.cluster`; only its first
    ``cluster_nodes`` worker nodes, if given); closed on exit.

    Raises :class:`facetrace.errors.ClusterError` for a cluster that cannot be reached
    and :class:`facetrace.errors.MissingDependencyError` without the ``ray`` extra.
    """
    if cluster is not None:
        from facetrace.ingest.cluster import RayAnalysis

        with RayAnalysis.connect(cluster, settings, nodes=cluster_nodes) as remote:
            yield remote
        return
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=init_worker,
        initargs=(settings.model_dump_json(),),
    ) as pool:
        yield LocalProcesses(pool, workers)
