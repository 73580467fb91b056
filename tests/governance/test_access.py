"""Access: roles, hashed scoped expiring keys, the one permission check, every CLI command."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetrace import AccessDeniedError, FaceTrace, UsageError
from facetrace.cli.main import app
from facetrace.governance import access
from facetrace.governance.access import Action, Actor, Role, authorize
from facetrace.governance.audit import AuditLog
from facetrace.governance.confirm import ConfirmationStatus, confirm_match
from tests.conftest import DLIB, FR
from tests.governance.conftest import ADMIN, Clock, task

# The policy, written out independently of the code's table.
EXPECTED: dict[Role, set[Action]] = {
    Role.ADMIN: set(Action),
    Role.INVESTIGATOR: {
        Action.SEARCH,
        Action.VERIFY,
        Action.CASES_READ,
        Action.MATCH_CONFIRM,
        Action.PEOPLE_VIEW,
        Action.PEOPLE_EDIT,
    },
    Role.AUDITOR: {Action.AUDIT_READ, Action.AUDIT_VERIFY, Action.CASES_READ},
    Role.PUBLIC: set(),
}
# What only the platform organisation's users may do, whatever their role allows.
PLATFORM_ONLY = {
    Action.ORGS_MANAGE,
    Action.TAKEDOWN_HOST,
    Action.OPTOUT,
    Action.RETENTION_RUN,
    Action.DOCTOR,
    Action.BACKUP,
    Action.INDEX_MANAGE,
    Action.CALIBRATE,
    Action.PEOPLE_VIEW,
    Action.PEOPLE_EDIT,
}


def expected_actions(role: Role, org: int) -> set[Action]:
    return EXPECTED[role] if org == 1 else EXPECTED[role] - PLATFORM_ONLY


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("org", [1, 2], ids=["platform-org", "other-org"])
def test_authorize_role_action_table(role: Role, action: Action, org: int) -> None:
    actor = Actor(name="u", role=role, user_id=1, key_id="k", org_id=org)
    if action in expected_actions(role, org):
        authorize(actor, action, "case:C1")
    else:
        with pytest.raises(AccessDeniedError):
            authorize(actor, action, "case:C1")


def test_key_scopes_narrow_the_role() -> None:
    actor = Actor(
        name="u", role=Role.ADMIN, user_id=1, key_id="k", scopes=frozenset({Action.SEARCH})
    )
    authorize(actor, Action.SEARCH)
    with pytest.raises(AccessDeniedError):
        authorize(actor, Action.TAKEDOWN)


def test_keys_are_hashed_expire_and_revoke_at_once(
    open_engine: Callable[..., FaceTrace], clock: Clock
) -> None:
    ft = open_engine()
    assert access.authenticate(ft, None, "local:me").bootstrap  # no users yet
    issued = access.add_user(ft, ADMIN, "alice", "investigator", expires_days=1)
    with pytest.raises(AccessDeniedError):  # bootstrap is over
        access.authenticate(ft, None, "local:me")
    with ft.store.engine.connect() as c:  # every stored value, whichever database
        db = " ".join(
            str(v)
            for table in ("api_keys", "users", "audit_log")
            for row in c.exec_driver_sql(f"SELECT * FROM {table}")
            for v in row
        ).encode()
    if ft.settings.database_url is None:  # and SQLite's files, byte for byte
        db += (ft.home / "facetrace.db").read_bytes()
        db += Path(str(ft.home / "facetrace.db") + "-wal").read_bytes()
    secret = issued.token.split("_", 2)[2]
    assert secret.encode() not in db and issued.token.encode() not in db
    alice = access.authenticate(ft, issued.token, "local:me")
    assert (alice.name, alice.role) == ("alice", Role.INVESTIGATOR)
    with pytest.raises(AccessDeniedError):
        access.authenticate(ft, issued.token[:-2] + "xx", "local:me")  # wrong secret
    clock.advance(days=1, seconds=1)
    with pytest.raises(AccessDeniedError, match="expired"):
        access.authenticate(ft, issued.token, "local:me")
    second = access.issue_key(ft, alice, "alice", scopes=["search"])  # users may add their own
    assert access.authenticate(ft, second.token, "l").scopes == frozenset({Action.SEARCH})
    with pytest.raises(UsageError, match="cannot be given"):
        access.issue_key(ft, ADMIN, "alice", scopes=["takedown"])
    access.revoke_key(ft, alice, second.key.key_id)
    with pytest.raises(AccessDeniedError, match="revoked"):
        access.authenticate(ft, second.token, "local:me")
    third = access.issue_key(ft, ADMIN, "alice")
    access.revoke_user(ft, ADMIN, "alice")
    with pytest.raises(AccessDeniedError, match="revoked"):
        access.authenticate(ft, third.token, "local:me")


def test_two_person_rule(open_engine: Callable[..., FaceTrace]) -> None:
    ft = open_engine()
    ft.add_source("s", lawful_basis="t")
    ft.ingest_tasks([task(FR / "obama.jpg", "/o.jpg")], source="s", workers=1)
    face = int(ft.store.face_ids()[0])
    tokens = {
        n: access.add_user(ft, ADMIN, n, r).token
        for n, r in (("ann", "investigator"), ("bob", "investigator"), ("aud", "auditor"))
    }
    ann, bob, aud = (access.authenticate(ft, tokens[n], "x") for n in ("ann", "bob", "aud"))
    with pytest.raises(AccessDeniedError):
        confirm_match(ft, aud, face, "C1")  # not allowed to take part at all
    assert confirm_match(ft, ann, face, "C1").status is ConfirmationStatus.PROPOSED
    with pytest.raises(AccessDeniedError, match="different user"):
        confirm_match(ft, ann, face, "C1")
    again = access.authenticate(ft, access.issue_key(ft, ann, "ann").token, "x")
    with pytest.raises(AccessDeniedError, match="different user"):
        confirm_match(ft, again, face, "C1")  # another key of the same person
    done = confirm_match(ft, bob, face, "C1")
    assert done.status is ConfirmationStatus.CONFIRMED and done.confirmed_by == bob.label
    assert "confirmed identification" in done.label
    kinds = [e.kind for e in AuditLog(ft.store.engine).entries("C1")]
    assert kinds.count("match.proposed") == 1 and kinds.count("match.confirmed") == 1


# --- every CLI command x every role ------------------------------------------------

MISSING = "/nonexistent/facetrace-photos"

ADMIN_ONLY = "admin-only"  # commands with no action of their own: admins only (fail closed)

# (command words, extra args, action or None = any authenticated user, or ADMIN_ONLY)
COMMANDS: list[tuple[tuple[str, ...], list[str], Action | str | None]] = [
    (("stats",), [], None),
    (("sources", "list"), [], None),
    (("sources", "show"), ["s1"], None),
    (("sources", "add"), ["new-src", "--basis", "b"], Action.SOURCES_MANAGE),
    (("sources", "set"), ["victim", "--max-depth", "1"], Action.SOURCES_MANAGE),
    (("sources", "block"), ["victim"], Action.SOURCES_MANAGE),
    (("ingest",), [MISSING, "--source", "s1"], Action.INGEST),
    (("jobs", "list"), [], Action.INGEST),
    (("jobs", "show"), ["999"], Action.INGEST),
    (("jobs", "resume"), ["999"], Action.INGEST),
    (("search",), [str(FR / "obama2.jpg"), "--case", "C1", "--reason", "r"], Action.SEARCH),
    (("verify",), [str(FR / "obama.jpg"), str(FR / "obama2.jpg")], Action.VERIFY),
    (("takedown",), ["--host", "nothing.example"], Action.TAKEDOWN_HOST),
    (("optout",), [str(DLIB / "dogs.jpg")], Action.OPTOUT),
    (("confirm",), ["--face", "999999", "--case", "C1"], Action.MATCH_CONFIRM),
    (("audit", "head"), [], Action.AUDIT_VERIFY),
    (("audit", "verify"), [], Action.AUDIT_VERIFY),
    (("audit", "export"), ["--case", "C1"], Action.AUDIT_READ),
    (("case", "list"), [], Action.CASES_READ),
    (("case", "show"), ["C1"], Action.CASES_READ),
    (("case", "report"), ["C1", "--out", os.devnull], Action.CASES_READ),
    (("users", "list"), [], Action.USERS_MANAGE),
    (("users", "add"), ["zed", "--role", "auditor"], Action.USERS_MANAGE),
    (("users", "revoke"), ["nobody"], Action.USERS_MANAGE),
    (("users", "passwd"), ["admin1", "--password-stdin"], Action.USERS_MANAGE),
    (("keys", "add"), ["admin1"], Action.KEYS_MANAGE),  # another user's key
    (("keys", "list"), [], None),  # one's own keys
    (("keys", "revoke"), ["000000000000"], Action.KEYS_MANAGE),  # not one's own
    (("retention", "run"), [], Action.RETENTION_RUN),
    (("doctor",), [], Action.DOCTOR),
    (("backup",), [str(FR / "obama.jpg")], Action.BACKUP),  # a file: refused after the gate
    (("index", "stats"), ["--json"], Action.INDEX_MANAGE),
    (("orgs", "add"), ["acme", "--admin", "acme-boss"], Action.ORGS_MANAGE),
    (("orgs", "list"), [], Action.ORGS_MANAGE),
    (("people", "list"), [], Action.PEOPLE_VIEW),
    (("people", "show"), ["999"], Action.PEOPLE_VIEW),
    (("people", "merge"), ["998", "999"], Action.PEOPLE_EDIT),
    (("people", "split"), ["999", "--faces", "1"], Action.PEOPLE_EDIT),
    (("people", "name"), ["999", "Nobody"], Action.PEOPLE_EDIT),
    (("people", "reject"), ["999", "--faces", "1"], Action.PEOPLE_EDIT),
    (("people", "recluster"), [], Action.PEOPLE_EDIT),
    (("index", "rebuild"), [], ADMIN_ONLY),
    (("index", "migrate"), ["--to", "exact"], ADMIN_ONLY),
    (("eval", "calibrate"), ["--images", MISSING], ADMIN_ONLY),
    # Storing a worst-group curve in HOME moves every search's threshold.
    (
        ("eval", "demographics"),
        ["--labels", MISSING, "--images", MISSING, "--calibrate", "sex"],
        ADMIN_ONLY,
    ),
]
ACTORS = ["admin", "investigator", "auditor", "anonymous", "bad-key"]


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    home = tmp_path_factory.mktemp("cli-access")
    runner = CliRunner()
    env = {"FACETRACE_API_KEY": "", "FACETRACE_MATCH_THRESHOLD": "0.6"}
    base = ["--home", str(home)]
    for args in (
        ["sources", "add", "s1", "--basis", "t"],
        ["sources", "add", "victim", "--basis", "t"],
        ["ingest", str(FR / "obama.jpg"), "--source", "s1", "--workers", "1"],
    ):
        assert runner.invoke(app, base + args, env=env).exit_code == 0
    tokens = {}
    for name, role in (("admin1", "admin"), ("inv1", "investigator"), ("aud1", "auditor")):
        # The first user is created by the bootstrap admin, the others by that admin.
        as_admin = {**env, "FACETRACE_API_KEY": tokens.get("admin", "")}
        out = runner.invoke(
            app, [*base, "users", "add", name, "--role", role, "--json"], env=as_admin
        )
        assert out.exit_code == 0, out.output
        tokens[role] = json.loads(out.stdout)["token"]
    tokens["bad-key"] = "ftk_000000000000_" + "A" * 43
    return home, tokens


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(
    ("words", "args", "action"), COMMANDS, ids=[" ".join(c[0]) for c in COMMANDS]
)
def test_every_command_for_every_role(
    cli_home: tuple[Path, dict[str, str]],
    words: tuple[str, ...],
    args: list[str],
    action: Action | str | None,
    actor: str,
) -> None:
    home, tokens = cli_home
    key = tokens.get(actor, "")
    env = {"FACETRACE_API_KEY": key, "FACETRACE_MATCH_THRESHOLD": "0.6"}
    result = CliRunner().invoke(app, ["--home", str(home), *words, *args], env=env)
    if actor in ("anonymous", "bad-key"):
        allowed = False
    else:
        role = Role(actor)
        if action == ADMIN_ONLY:
            allowed = role is Role.ADMIN
        else:
            allowed = action is None or action in EXPECTED[role]
    denied = "access denied" in result.output
    if allowed:
        assert not denied, result.output
    else:
        assert denied and result.exit_code != 0, result.output


def test_revoked_key_fails_on_next_cli_use(cli_home: tuple[Path, dict[str, str]]) -> None:
    home, tokens = cli_home
    runner = CliRunner()
    base = ["--home", str(home)]
    admin = {"FACETRACE_API_KEY": tokens["admin"]}
    out = runner.invoke(app, [*base, "keys", "add", "aud1", "--json"], env=admin)
    issued = json.loads(out.stdout)
    mine = {"FACETRACE_API_KEY": issued["token"]}
    assert runner.invoke(app, [*base, "audit", "head"], env=mine).exit_code == 0
    assert runner.invoke(app, [*base, "keys", "revoke", issued["key_id"]], env=admin).exit_code == 0
    again = runner.invoke(app, [*base, "--api-key", issued["token"], "audit", "head"])
    assert again.exit_code != 0 and "revoked" in again.output


# Commands that never touch a gallery: benchmarks and evaluation run on temporary
# galleries or image folders, and the demo builds its own gallery in HOME/demo.
UNGATED = {
    ("demo",),
    ("bench", "ingest"),
    ("bench", "index"),
    ("bench", "search"),
    ("bench", "serve"),
    ("eval", "pairs"),
    ("eval", "identify"),
    ("eval", "cluster"),
    # restore makes a new gallery from a backup (its home must hold none)
    ("restore",),
    # the server signs in every request itself (tests/api covers every endpoint x role)
    ("serve",),
}


def test_every_cli_command_is_checked_above() -> None:
    from typer.main import get_command

    def paths(group: object, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
        out: set[tuple[str, ...]] = set()
        for name, cmd in getattr(group, "commands", {}).items():
            if getattr(cmd, "commands", None):
                out |= paths(cmd, (*prefix, name))
            else:
                out.add((*prefix, name))
        return out

    assert paths(get_command(app)) - UNGATED == {c[0] for c in COMMANDS}
