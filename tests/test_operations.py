"""Every operation x every role: the one permission check, asked by the operation itself.

The faces (CLI, HTTP API) call these operations and check nothing themselves, so this
matrix covers every face; tests/governance/test_access.py and tests/api/ run the same
question through the CLI and the API.
"""

from __future__ import annotations

from typing import Any

import pytest

from facetrace import AccessDeniedError, FaceTrace
from facetrace.config import IndexBackend
from facetrace.governance import access
from facetrace.governance.access import Action, Actor
from facetrace.governance.audit import AuditLog
from facetrace.operations import ANYONE, CATALOGUE
from tests.conftest import DLIB, FR
from tests.governance.conftest import ADMIN, task
from tests.governance.test_access import EXPECTED

MISSING = "/nonexistent/facetrace-photos"

# Arguments that reach the permission check and, where allowed, do little harm.
ARGS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "search": ((FR / "obama2.jpg",), {"case_id": "C1", "reason": "r"}),
    "verify": ((FR / "obama.jpg", FR / "obama2.jpg"), {}),
    "stats": ((), {}),
    "sources.list": ((), {}),
    "sources.show": (("s1",), {}),
    "sources.add": (("new-src",), {"lawful_basis": "b"}),
    "sources.update": (("s1",), {"jurisdiction": "GB"}),
    "sources.block": (("victim",), {}),
    "ingest": (([MISSING],), {"source": "s1"}),
    "jobs.list": ((), {}),
    "jobs.show": ((999,), {}),
    "jobs.resume": ((999,), {}),
    "takedown.source": (("nothing",), {}),
    "takedown.host": (("nothing.example",), {}),
    "optout": ((DLIB / "dogs.jpg",), {}),
    "optout.request": (((DLIB / "dogs.jpg").read_bytes(),), {}),
    "tasks.takedown.source": (({"source": "nothing"},), {}),
    "tasks.takedown.host": (({"host": "nothing.example"},), {}),
    "tasks.optout": (({},), {"payload": (DLIB / "dogs.jpg").read_bytes()}),
    "tasks.ingest.urls": (({"source": "s1", "urls": []},), {}),
    "tasks.show": ((999,), {}),
    "confirm": ((999999, "C1"), {}),
    "audit.head": ((), {}),
    "audit.verify": ((), {}),
    "audit.export": (("C1",), {}),
    "cases.list": ((), {}),
    "cases.show": (("C1",), {}),
    "cases.report": (("C1",), {}),
    "orgs.add": (("acme",), {"admin": "acme-boss"}),
    "orgs.list": ((), {}),
    "users.add": (("zed", "auditor"), {}),
    "users.list": ((), {}),
    "users.revoke": (("nobody",), {}),
    "users.password": (("admin1", "a long enough password"), {}),
    "keys.add": (("admin1",), {}),  # another user's key
    "keys.list": (("admin1",), {}),
    "keys.revoke": (("000000000000",), {}),
    "retention.run": ((), {}),
    "doctor": ((), {}),
    "backup": ((FR / "obama.jpg",), {}),  # a file, not a folder: refused after the check
    "index.stats": ((), {}),
    "index.rebuild": ((), {}),
    "index.migrate": ((IndexBackend.EXACT,), {}),
    "calibrate": ((), {}),
    "people.list": ((), {}),
    "people.show": ((999,), {}),
    "people.merge": ((998, [999]), {}),
    "people.split": ((999, [1]), {}),
    "people.name": ((999, "Nobody"), {}),
    "people.reject": ((999, [1]), {}),
    "people.recluster": ((), {}),
}


@pytest.fixture(scope="module")
def gallery_and_actors(
    tmp_path_factory: pytest.TempPathFactory, analyzer: Any
) -> tuple[FaceTrace, dict[str, Actor]]:
    from facetrace import Settings

    home = tmp_path_factory.mktemp("ops-matrix")
    ft = FaceTrace.open(Settings(home=home, workers=1, match_threshold=0.6), analyzer=analyzer)
    ft.add_source("s1", lawful_basis="t")
    ft.add_source("victim", lawful_basis="t")
    ft.ingest_tasks([task(FR / "obama.jpg", "/o.jpg")], source="s1", workers=1)
    actors = {}
    for name, role in (("admin1", "admin"), ("inv1", "investigator"), ("aud1", "auditor")):
        token = access.add_user(ft, ADMIN, name, role).token
        actors[role] = access.authenticate(ft, token, "x")
    scoped = access.issue_key(ft, actors["admin"], "admin1", scopes=["search"]).token
    actors["admin, key scoped to search"] = access.authenticate(ft, scoped, "x")
    return ft, actors


def allowed(actor: Actor, needs: object) -> bool:
    if needs is ANYONE:
        return True
    action = getattr(needs, "action", needs)
    assert isinstance(action, Action)
    granted = EXPECTED[actor.role]
    return action in granted and (actor.scopes is None or action in actor.scopes)


def test_every_operation_has_arguments_here() -> None:
    assert set(ARGS) == set(CATALOGUE)


ROLES = ["admin", "investigator", "auditor", "admin, key scoped to search"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_operation_for_every_role(
    gallery_and_actors: tuple[FaceTrace, dict[str, Actor]], name: str, role: str
) -> None:
    ft, actors = gallery_and_actors
    actor = actors[role]
    op = CATALOGUE[name]
    args, kwargs = ARGS[name]
    log = AuditLog(ft.store.engine)
    denials = sum(e.kind == "access.denied" for e in log.entries())
    try:
        op.func(ft, actor, *args, **kwargs)
        outcome: Exception | None = None
    except Exception as exc:  # the outcome is judged below
        outcome = exc
    if allowed(actor, op.needs):
        assert not isinstance(outcome, AccessDeniedError), outcome
    else:
        assert isinstance(outcome, AccessDeniedError), f"{name} let {role} through: {outcome!r}"
        # every refusal is in the audit log
        assert sum(e.kind == "access.denied" for e in log.entries()) == denials + 1


def test_own_keys_need_no_key_manager(
    gallery_and_actors: tuple[FaceTrace, dict[str, Actor]],
) -> None:
    ft, actors = gallery_and_actors
    me = actors["auditor"]
    issued = access.issue_key(ft, me, me.name)
    assert {k.key_id for k in access.list_keys(ft, me)} >= {issued.key.key_id}
    access.revoke_key(ft, me, issued.key.key_id)
    with pytest.raises(AccessDeniedError):
        access.list_keys(ft, me, "admin1")


def test_operations_take_engine_then_actor() -> None:
    import inspect

    for op in CATALOGUE.values():
        params = list(inspect.signature(op.func).parameters)
        assert params[:2] == ["engine", "actor"], op.name


def test_a_scoped_key_cannot_mint_a_wider_one(
    gallery_and_actors: tuple[FaceTrace, dict[str, Actor]],
) -> None:
    ft, actors = gallery_and_actors
    narrow = actors["admin, key scoped to search"]
    with pytest.raises(AccessDeniedError):
        access.issue_key(ft, narrow, narrow.name)  # would be unscoped: admin's every action
