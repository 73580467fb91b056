"""Ingest: photos into a registered source, as resumable jobs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from facetrace.errors import NotFoundError
from facetrace.governance.access import Action, Actor, require
from facetrace.store.repository import JobRecord
from facetrace.types import IngestSummary

if TYPE_CHECKING:
    from facetrace.app import FaceTrace
    from facetrace.ingest.pipeline import ItemOutcome

OnItem = Callable[["ItemOutcome"], None]


def check_source(engine: FaceTrace, actor: Actor, source: str) -> None:
    """Fail fast, before any work, if ``actor`` may not ingest or ``source`` collects nothing."""
    require(engine, actor, Action.INGEST, f"source:{source}")
    engine.source(source, actor.org_id)


def ingest(
    engine: FaceTrace,
    actor: Actor,
    paths: Sequence[Path],
    *,
    source: str,
    workers: int | None = None,
    on_item: OnItem | None = None,
    cluster: str | None = None,
) -> IngestSummary:
    """Ingest photos, folders, URL lists or WARC archives into ``source``, as a job;
    with ``cluster`` (``auto`` or ``ray://HOST:PORT``) analysed on that Ray cluster."""
    check_source(engine, actor, source)
    return engine.ingest(
        paths,
        source=source,
        workers=workers,
        on_item=on_item,
        actor=actor.label,
        org=actor.org_id,
        cluster=cluster,
    )


def jobs(engine: FaceTrace, actor: Actor, limit: int = 50) -> list[JobRecord]:
    """The most recent ingest jobs into the organisation's own sources."""
    require(engine, actor, Action.INGEST)
    return engine.store.jobs(limit, org=actor.org_id)


def job(engine: FaceTrace, actor: Actor, job_id: int) -> JobRecord:
    """One job: inputs, status, item counts and every item's error."""
    require(engine, actor, Action.INGEST, f"job:{job_id}")
    record = engine.store.job(job_id)
    if record is None or record.owner_org != actor.org_id:
        raise NotFoundError(f"no ingest job {job_id}")
    return record


def resume(
    engine: FaceTrace,
    actor: Actor,
    job_id: int,
    *,
    workers: int | None = None,
    on_item: OnItem | None = None,
    cluster: str | None = None,
    paths: Sequence[Path] | None = None,
) -> IngestSummary:
    """Finish an interrupted job, or retry a finished job's item errors; items already
    done are skipped unread. ``paths``: the job's inputs as this machine holds them."""
    require(engine, actor, Action.INGEST, f"job:{job_id}")
    return engine.resume_job(
        job_id,
        workers=workers,
        on_item=on_item,
        actor=actor.label,
        org=actor.org_id,
        cluster=cluster,
        paths=paths,
    )


def upload(
    engine: FaceTrace,
    actor: Actor,
    source: str,
    photos: Sequence[tuple[str, bytes]],
) -> IngestSummary:
    """Ingest photos sent over the network, ``(file name, bytes)`` each; their origin is
    recorded as ``upload:<file name>``. Each photo is committed on its own, so what the
    summary acknowledges is stored whatever happens to the rest."""
    from facetrace.ingest.tasks import PhotoTask

    check_source(engine, actor, source)
    now = engine.clock()
    tasks = [
        PhotoTask(key=f"{n}:{name}", origin=f"upload:{name}", collected_at=now, data=data)
        for n, (name, data) in enumerate(photos)
    ]
    return engine.ingest_tasks(tasks, source=source, workers=1, actor=actor.label, org=actor.org_id)
