"""The application layer: every action that a face (the CLI, the HTTP API, the web UI)
can take, each in one home.

An operation is a function ``op(engine, actor, ...)``. It asks the one permission check
first (:func:`~facetrace.governance.access.require`, which audits a refusal), then does
the work, records its typed event and returns a typed result with ``to_dict()``. Faces
authenticate the caller, parse the request, call the operation and render the result;
they check nothing themselves.

:data:`CATALOGUE` names every operation with the action it needs, so one test matrix
(``tests/test_operations.py``) covers every role on every face.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from facetrace.governance import (
    access,
    backup,
    confirm,
    doctor,
    optout,
    retention,
    sessions,
    takedown,
)
from facetrace.governance.access import Action
from facetrace.identity import people
from facetrace.operations import audit, cases, gallery, index, ingest, orgs, sources, tasks
from facetrace.operations.tasks import TaskKind


class _Anyone:
    """Any authenticated actor may run the operation."""

    def __repr__(self) -> str:
        return "ANYONE"


ANYONE = _Anyone()


class _OwnOrAction:
    """Allowed with the action, or on the actor's own user (their own keys)."""

    def __init__(self, action: Action) -> None:
        self.action = action

    def __repr__(self) -> str:
        return f"own or {self.action}"


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation: its name, what it needs, and the function."""

    name: str
    needs: Action | _Anyone | _OwnOrAction
    func: Callable[..., Any]


CATALOGUE: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("search", Action.SEARCH, gallery.search),
        Operation("verify", Action.VERIFY, gallery.verify),
        Operation("stats", ANYONE, gallery.stats),
        Operation("sources.list", ANYONE, sources.list_sources),
        Operation("sources.show", ANYONE, sources.show),
        Operation("sources.add", Action.SOURCES_MANAGE, sources.add),
        Operation("sources.update", Action.SOURCES_MANAGE, sources.update),
        Operation("sources.block", Action.SOURCES_MANAGE, sources.block),
        Operation("ingest", Action.INGEST, ingest.ingest),
        Operation("jobs.list", Action.INGEST, ingest.jobs),
        Operation("jobs.show", Action.INGEST, ingest.job),
        Operation("jobs.resume", Action.INGEST, ingest.resume),
        Operation("takedown.source", Action.TAKEDOWN, takedown.takedown_source),
        Operation("takedown.host", Action.TAKEDOWN_HOST, takedown.takedown_host),
        Operation("optout", Action.OPTOUT, optout.opt_out),
        Operation(
            "tasks.takedown.source",
            Action.TAKEDOWN,
            partial(tasks.submit, kind=TaskKind.TAKEDOWN_SOURCE),
        ),
        Operation(
            "tasks.takedown.host",
            Action.TAKEDOWN_HOST,
            partial(tasks.submit, kind=TaskKind.TAKEDOWN_HOST),
        ),
        Operation("tasks.optout", Action.OPTOUT, partial(tasks.submit, kind=TaskKind.OPTOUT)),
        Operation(
            "tasks.ingest.urls", Action.INGEST, partial(tasks.submit, kind=TaskKind.INGEST_URLS)
        ),
        Operation("tasks.show", Action.TAKEDOWN, tasks.show),  # an unknown task: as takedown
        Operation("optout.request", ANYONE, optout.request_optout),
        Operation("confirm", Action.MATCH_CONFIRM, confirm.confirm_match),
        Operation("audit.head", Action.AUDIT_VERIFY, audit.head),
        Operation("audit.verify", Action.AUDIT_VERIFY, audit.verify),
        Operation("audit.export", Action.AUDIT_READ, audit.export),
        Operation("cases.list", Action.CASES_READ, cases.list_cases),
        Operation("cases.show", Action.CASES_READ, cases.show),
        Operation("cases.report", Action.CASES_READ, cases.report),
        Operation("orgs.add", Action.ORGS_MANAGE, orgs.add),
        Operation("orgs.list", Action.ORGS_MANAGE, orgs.list_orgs),
        Operation("users.add", Action.USERS_MANAGE, access.add_user),
        Operation("users.list", Action.USERS_MANAGE, access.list_users),
        Operation("users.revoke", Action.USERS_MANAGE, access.revoke_user),
        Operation("users.password", _OwnOrAction(Action.USERS_MANAGE), sessions.set_password),
        Operation("keys.add", _OwnOrAction(Action.KEYS_MANAGE), access.issue_key),
        Operation("keys.list", _OwnOrAction(Action.KEYS_MANAGE), access.list_keys),
        Operation("keys.revoke", _OwnOrAction(Action.KEYS_MANAGE), access.revoke_key),
        Operation("retention.run", Action.RETENTION_RUN, retention.run_retention),
        Operation("doctor", Action.DOCTOR, doctor.examine),
        Operation("backup", Action.BACKUP, backup.backup),
        Operation("index.stats", Action.INDEX_MANAGE, index.stats),
        Operation("index.rebuild", Action.INDEX_MANAGE, index.rebuild),
        Operation("index.migrate", Action.INDEX_MANAGE, index.migrate),
        Operation("calibrate", Action.CALIBRATE, index.check_calibrate),
        Operation("people.list", Action.PEOPLE_VIEW, people.list_people),
        Operation("people.show", Action.PEOPLE_VIEW, people.show),
        Operation("people.merge", Action.PEOPLE_EDIT, people.merge),
        Operation("people.split", Action.PEOPLE_EDIT, people.split),
        Operation("people.name", Action.PEOPLE_EDIT, people.name),
        Operation("people.reject", Action.PEOPLE_EDIT, people.reject),
        Operation("people.recluster", Action.PEOPLE_EDIT, people.recluster),
    )
}

__all__ = [
    "ANYONE",
    "CATALOGUE",
    "Operation",
    "audit",
    "cases",
    "gallery",
    "index",
    "ingest",
    "orgs",
    "sources",
    "tasks",
]
