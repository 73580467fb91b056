"""Every parser survives arbitrary bytes: the seeds and every past finding are replayed,
each target is fuzzed for a bounded time (scripts/fuzz.sh runs longer), and the
permission check and the audit chain hold their properties on generated inputs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from facetrace.errors import AccessDeniedError
from facetrace.events import SearchPerformed
from facetrace.governance.access import ROLE_ACTIONS, Action, Actor, Role, authorize
from facetrace.governance.audit import AuditLog
from facetrace.store.repository import Store
from tests.fuzz.targets import TARGETS, run_one

HERE = Path(__file__).parent
INPUTS = sorted(
    (t, p)
    for t in TARGETS
    for folder in (HERE / "corpus" / t, HERE / "regressions" / t)
    if folder.exists()
    for p in folder.iterdir()
)


@pytest.mark.parametrize(("target", "path"), INPUTS, ids=[f"{t}/{p.name}" for t, p in INPUTS])
def test_seeds_and_past_findings_raise_only_facetrace_errors(target: str, path: Path) -> None:
    run_one(target, path.read_bytes())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_bounded_fuzzing_finds_nothing(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(HERE / "corpus" / target, corpus)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.run",
            target,
            "-runs=3000",
            "-max_total_time=20",
            f"-artifact_prefix={tmp_path}/",
            "-max_len=8192",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=HERE.parent.parent,
    )
    findings = sorted(p.name for p in tmp_path.glob("crash-*"))
    assert done.returncode == 0 and not findings, done.stderr[-3000:]
    assert "Done" in done.stderr


# --- properties -------------------------------------------------------------------------

ACTIONS = st.sampled_from(list(Action))
ROLES = st.sampled_from(list(Role))


@given(
    role=ROLES,
    action=ACTIONS,
    scopes=st.none() | st.frozensets(ACTIONS),
    resource=st.none() | st.text(max_size=30),
    name=st.text(min_size=1, max_size=10),
    bootstrap=st.booleans(),
)
def test_authorize_allows_exactly_the_role_and_key(
    role: Role,
    action: Action,
    scopes: frozenset[Action] | None,
    resource: str | None,
    name: str,
    bootstrap: bool,
) -> None:
    actor = Actor(name=name, role=role, user_id=None if bootstrap else 1, scopes=scopes)
    granted = action in ROLE_ACTIONS[role] and (scopes is None or action in scopes)
    own_keys = action is Action.KEYS_MANAGE and resource == f"user:{name}" and not bootstrap
    try:
        authorize(actor, action, resource)
        allowed = True
    except AccessDeniedError as exc:
        allowed = False
        assert str(action) in str(exc)
    assert allowed == (granted or own_keys)


TAMPER = st.sampled_from(["body", "actor", "hash", "delete", "swap"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(min_value=2, max_value=8), tamper=st.none() | TAMPER, at=st.integers(0, 7))
def test_audit_chain_detects_every_tampering(
    tmp_path_factory: pytest.TempPathFactory, n: int, tamper: str | None, at: int
) -> None:
    db = tmp_path_factory.mktemp("audit") / "a.db"
    store = Store.open(f"sqlite:///{db}")
    from datetime import UTC, datetime

    log = AuditLog(store.engine)
    for i in range(n):
        log.track(
            SearchPerformed(
                actor="alice",
                at=datetime(2026, 1, 1, tzinfo=UTC),
                case_id=f"C{i}",
                reason="r",
                probe_sha256="ab" * 32,
                gallery_size=i,
                probe_faces=1,
                results=[(i, 0.5)],
            )
        )
    head = log.head()
    seq = at % n + 1
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        if tamper == "body":
            conn.exec_driver_sql(
                f"UPDATE audit_log SET body = replace(body, '\"C{seq - 1}\"', '\"X\"') "
                f"WHERE seq = {seq}"
            )
        elif tamper == "actor":
            conn.exec_driver_sql(f"UPDATE audit_log SET actor = 'mallory' WHERE seq = {seq}")
        elif tamper == "hash":
            conn.exec_driver_sql(f"UPDATE audit_log SET hash = '{'0' * 64}' WHERE seq = {seq}")
        elif tamper == "delete":
            conn.exec_driver_sql(f"DELETE FROM audit_log WHERE seq = {seq}")
        elif tamper == "swap" and n >= 2:  # reorder the chain: its numbers are org_seq
            other = seq % n + 1
            swap = "UPDATE audit_log SET org_seq = {} WHERE org_seq = {}"
            conn.exec_driver_sql(swap.format(-1, seq))
            conn.exec_driver_sql(swap.format(seq, other))
            conn.exec_driver_sql(swap.format(other, -1))
    engine.dispose()
    report = AuditLog(store.engine).verify(head)
    store.close()
    assert report.ok == (tamper is None)
