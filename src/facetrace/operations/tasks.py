"""Long operations as tasks that a face starts and polls.

A takedown, an opt-out or a URL-list ingest can take minutes (fetching, compacting the
index, vacuuming the store). A face submits one (:func:`submit`: the permission is
checked then, and again when it runs), gets a task id back at once, and polls
:func:`show`. The task is stored before it is acknowledged, with what it needs to run
(an opt-out's photo until it is processed, then wiped), so a task acknowledged before
a crash runs when the server starts again (:func:`pending`). Whoever runs tasks calls
:func:`run` for each, one at a time on the engine.

Several processes (``facetrace serve --workers N``, or API servers on several machines
over one PostgreSQL database) share one task table. A process runs a task only once it
has *claimed* it: one conditional update moves it from queued to running, so exactly
one process wins. While it runs, its runner renews the claim (:func:`renew`, which
moves ``updated_at``); a running task whose claim is older than the lease belongs to a
process that died, and any process may claim it again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update

from facetrace.errors import FaceTraceError, NotFoundError, UsageError
from facetrace.events import PLATFORM_ORG, TaskSubmitted
from facetrace.governance import optout, takedown
from facetrace.governance import schema as gs
from facetrace.governance.access import Action, Actor, Role, require
from facetrace.store.repository import JobStatus, utc

if TYPE_CHECKING:
    from facetrace.app import FaceTrace

log = logging.getLogger("facetrace.tasks")


class TaskKind(StrEnum):
    TAKEDOWN_SOURCE = "takedown.source"
    TAKEDOWN_HOST = "takedown.host"
    OPTOUT = "optout"
    INGEST_URLS = "ingest.urls"


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


NEEDS: dict[TaskKind, Action] = {
    TaskKind.TAKEDOWN_SOURCE: Action.TAKEDOWN,
    TaskKind.TAKEDOWN_HOST: Action.TAKEDOWN_HOST,
    TaskKind.OPTOUT: Action.OPTOUT,
    TaskKind.INGEST_URLS: Action.INGEST,
}


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: int
    kind: TaskKind
    status: TaskStatus
    request: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    org_id: int = PLATFORM_ORG

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.id,
            "kind": self.kind.value,
            "status": self.status.value,
            "request": self.request,
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _actor_json(actor: Actor) -> str:
    return json.dumps(
        {
            "name": actor.name,
            "role": actor.role.value,
            "user_id": actor.user_id,
            "key_id": actor.key_id,
            "scopes": sorted(actor.scopes) if actor.scopes is not None else None,
            "org_id": actor.org_id,
        }
    )


def _actor_of(text: str) -> Actor:
    d = json.loads(text)
    scopes = frozenset(Action(s) for s in d["scopes"]) if d["scopes"] is not None else None
    return Actor(d["name"], Role(d["role"]), d["user_id"], d["key_id"], scopes, d.get("org_id", 1))


def _record(m: Any) -> TaskRecord:
    return TaskRecord(
        id=m["id"],
        kind=TaskKind(m["kind"]),
        status=TaskStatus(m["status"]),
        request=json.loads(m["request"]),
        result=json.loads(m["result"]) if m["result"] else None,
        error=m["error"],
        created_at=utc(m["created_at"]),
        updated_at=utc(m["updated_at"]),
        org_id=m["org_id"],
    )


def submit(
    engine: FaceTrace,
    actor: Actor,
    request: dict[str, Any],
    payload: bytes | None = None,
    *,
    kind: TaskKind,
) -> TaskRecord:
    """Check the permission, store the task and return it (queued)."""
    if request.get("host"):
        require(engine, actor, NEEDS[kind], f"host:{request['host']}")
    else:
        source = request.get("source")
        require(engine, actor, NEEDS[kind], f"source:{source}" if source else None)
    if kind is TaskKind.TAKEDOWN_SOURCE:  # not this organisation's to take down: refused now
        takedown.target_source(engine, actor, str(request.get("source")))
    if kind is TaskKind.INGEST_URLS:
        engine.source(str(request.get("source")), org=actor.org_id)  # unknown or blocked
        if not request.get("urls"):
            raise UsageError("name at least one URL")
    if kind is TaskKind.OPTOUT and not payload:
        raise UsageError("an opt-out needs a photo")
    now = engine.clock()
    with engine.store.engine.begin() as conn:
        key = conn.execute(
            gs.tasks.insert().values(
                kind=kind.value,
                status=TaskStatus.QUEUED.value,
                actor=_actor_json(actor),
                request=json.dumps(request, sort_keys=True),
                payload=payload,
                created_at=now,
                updated_at=now,
                org_id=actor.org_id,
            )
        ).inserted_primary_key
    assert key is not None
    task_id = int(key[0])
    engine.track_event(
        TaskSubmitted(
            actor=actor.label, at=now, org=actor.org_id, task_id=task_id, task_kind=kind.value
        )
    )
    return _get(engine, task_id)


def _get(engine: FaceTrace, task_id: int) -> TaskRecord:
    with engine.store.engine.connect() as conn:
        row = conn.execute(select(gs.tasks).where(gs.tasks.c.id == task_id)).first()
    if row is None:
        raise NotFoundError(f"no task {task_id}")
    return _record(row._mapping)


def show(engine: FaceTrace, actor: Actor, task_id: int) -> TaskRecord:
    """A task's status, and its receipt or error once it has run."""
    try:
        record = _get(engine, task_id)
        if record.org_id != actor.org_id:  # another organisation's: as if it did not exist
            raise NotFoundError(f"no task {task_id}")
    except NotFoundError:
        require(engine, actor, Action.TAKEDOWN, f"task:{task_id}")  # refused alike if unknown
        raise
    require(engine, actor, NEEDS[record.kind], f"task:{task_id}")
    return record


def pending(engine: FaceTrace) -> list[int]:
    """Tasks acknowledged but not finished (queued, or running when a process stopped)."""
    t = gs.tasks
    with engine.store.engine.connect() as conn:
        ids = conn.execute(
            select(t.c.id)
            .where(t.c.status.in_([TaskStatus.QUEUED.value, TaskStatus.RUNNING.value]))
            .order_by(t.c.id)
        ).scalars()
        return [int(i) for i in ids]


def claim(engine: FaceTrace, task_id: int, *, lease_seconds: float) -> bool:
    """Take a task to run it: True for exactly one caller while it is queued, or once
    its last runner's claim is older than ``lease_seconds`` (that runner died)."""
    t = gs.tasks
    now = engine.clock()
    stale = now - timedelta(seconds=lease_seconds)
    claimable = or_(
        t.c.status == TaskStatus.QUEUED.value,
        and_(t.c.status == TaskStatus.RUNNING.value, t.c.updated_at < stale),
    )
    with engine.store.engine.begin() as conn:
        taken = conn.execute(
            update(t)
            .where(t.c.id == task_id, claimable)
            .values(status=TaskStatus.RUNNING.value, updated_at=now)
        )
    return taken.rowcount == 1


def renew(engine: FaceTrace, task_id: int) -> None:
    """Keep a running task's claim fresh (its runner is alive)."""
    t = gs.tasks
    with engine.store.engine.begin() as conn:
        conn.execute(
            update(t)
            .where(t.c.id == task_id, t.c.status == TaskStatus.RUNNING.value)
            .values(updated_at=engine.clock())
        )


def _set(engine: FaceTrace, task_id: int, **values: Any) -> None:
    with engine.store.engine.begin() as conn:
        conn.execute(
            update(gs.tasks)
            .where(gs.tasks.c.id == task_id)
            .values(updated_at=engine.clock(), **values)
        )


def run(engine: FaceTrace, task_id: int, *, lease_seconds: float = 0.0) -> TaskRecord:
    """Run one task as the actor who submitted it, if this caller claims it (see
    :func:`claim`; ``lease_seconds=0``: a task left running is taken at once, right for
    a single process); record its receipt or error."""
    with engine.store.engine.connect() as conn:
        row = conn.execute(select(gs.tasks).where(gs.tasks.c.id == task_id)).first()
    if row is None:
        raise NotFoundError(f"no task {task_id}")
    m = row._mapping
    record = _record(m)
    if record.status in (TaskStatus.COMPLETED, TaskStatus.FAILED):
        return record
    if not claim(engine, task_id, lease_seconds=lease_seconds):
        return record  # another process runs it
    actor = _actor_of(m["actor"])
    try:
        result = _dispatch(engine, actor, record, m["payload"], task_id)
    except FaceTraceError as exc:
        _set(engine, task_id, status=TaskStatus.FAILED.value, error=str(exc), payload=None)
    except Exception as exc:
        log.error("task %s failed", task_id, exc_info=exc)
        message = f"the task could not be completed ({type(exc).__name__}); see the server log"
        _set(engine, task_id, status=TaskStatus.FAILED.value, error=message, payload=None)
    else:
        _set(
            engine,
            task_id,
            status=TaskStatus.COMPLETED.value,
            result=json.dumps(result, sort_keys=True, default=str),
            payload=None,
        )
    return _get(engine, task_id)


def _dispatch(
    engine: FaceTrace, actor: Actor, task: TaskRecord, payload: bytes | None, task_id: int
) -> dict[str, Any]:
    request = task.request
    if task.kind is TaskKind.TAKEDOWN_SOURCE:
        return takedown.takedown_source(engine, actor, str(request["source"])).to_dict()
    if task.kind is TaskKind.TAKEDOWN_HOST:
        return takedown.takedown_host(engine, actor, str(request["host"])).to_dict()
    if task.kind is TaskKind.OPTOUT:
        return optout.opt_out(engine, actor, payload or b"").to_dict()
    return _ingest_urls(engine, actor, request, task_id)


def _ingest_urls(
    engine: FaceTrace, actor: Actor, request: dict[str, Any], task_id: int
) -> dict[str, Any]:
    """Fetch and ingest a URL list as an ingest job; a task interrupted mid-way resumes
    its job (items already done are not fetched again), on whichever machine takes the
    task over: the list is written again from the task's request, which the database
    holds, so no machine needs another's disk."""
    from facetrace.operations import ingest

    folder = engine.home / "tasks"
    folder.mkdir(parents=True, exist_ok=True)
    urls = folder / f"task-{task_id}.txt"
    urls.write_text("\n".join(str(u) for u in request["urls"]) + "\n")
    started = [
        j
        for j in engine.store.jobs(limit=1000)
        if j.status != JobStatus.COMPLETED and _is_list_of(j.spec.get("paths"), urls.name)
    ]
    if started:
        summary = ingest.resume(engine, actor, started[0].id, paths=[urls])
    else:
        summary = ingest.ingest(engine, actor, [Path(urls)], source=str(request["source"]))
    return summary.to_dict()


def _is_list_of(paths: object, name: str) -> bool:
    """Whether a job's inputs are a task's URL list (``tasks/<name>`` in some machine's
    home)."""
    if not isinstance(paths, list) or len(paths) != 1:
        return False
    path = Path(str(paths[0]))
    return path.name == name and path.parent.name == "tasks"
