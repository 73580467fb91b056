"""The audit log: hash-chained, written before results, tamper-evident, exportable by case."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetrace import AuditError, FaceTrace, Settings
from facetrace.cli.main import app
from facetrace.events import Event, SearchPerformed, SourceRegistered
from facetrace.governance.audit import AuditHead, AuditLog, entry_body, sha256_hex
from tests.conftest import FR
from tests.governance.conftest import T0


def _filled(ft: FaceTrace, n: int = 6) -> AuditLog:
    log = AuditLog(ft.store.engine)
    for i in range(n):
        log.track(
            SearchPerformed(
                actor="alice",
                at=T0,
                case_id=f"CASE-{i % 2}",
                reason="r",
                probe_sha256="ab" * 32,
                gallery_size=10,
                probe_faces=1,
                results=[(i, 0.5)],
            )
        )
    return log


def _sql(ft: FaceTrace, statement: str) -> None:
    with ft.store.engine.begin() as conn:
        conn.exec_driver_sql(statement)


@pytest.fixture
def ft(open_engine: Callable[..., FaceTrace]) -> FaceTrace:
    return open_engine()


def test_intact_log_verifies_and_entries_chain(ft: FaceTrace) -> None:
    log = _filled(ft)
    report = log.verify(log.head())
    assert report.ok and report.entries == 6
    entries = [e.to_dict() for e in log.entries()]
    # Anyone can recheck an exported entry: hash = sha256(canonical body), prev = last hash.
    for before, entry in itertools.pairwise(entries):
        assert entry["prev"] == before["hash"]
        assert sha256_hex(entry_body(entry)) == entry["hash"]


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit_log SET body = replace(body, '\"r\"', '\"x\"') WHERE seq = 3",  # changed
        "UPDATE audit_log SET case_id = 'CASE-9' WHERE seq = 3",  # changed column
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2",  # changed column
        "DELETE FROM audit_log WHERE seq = 3",  # deleted
        "UPDATE audit_log SET org_seq = -org_seq WHERE org_seq IN (2, 3)",  # reordered
    ],
    ids=["body-changed", "case-changed", "actor-changed", "deleted", "reordered"],
)
def test_verify_detects_tampering(ft: FaceTrace, tamper: str) -> None:
    log = _filled(ft)
    assert log.verify().ok
    _sql(ft, tamper)
    if "seq = -org_seq" in tamper:  # the chain's numbers, which entries show
        _sql(ft, "UPDATE audit_log SET org_seq = 3 WHERE org_seq = -2")
        _sql(ft, "UPDATE audit_log SET org_seq = 2 WHERE org_seq = -3")
    report = log.verify()
    assert not report.ok
    assert report.problems


def test_truncation_and_rewritten_history_are_caught_by_the_anchor(ft: FaceTrace) -> None:
    log = _filled(ft)
    anchor = log.head()
    _sql(ft, "DELETE FROM audit_log WHERE seq >= 5")
    assert log.verify().ok  # a shorter chain is self-consistent...
    report = log.verify(anchor)  # ...but not against the head the auditor kept
    assert not report.ok and "truncated" in report.problems[0]
    # Rewriting an entry and re-chaining everything after it is caught the same way.
    _filled(ft, 2)
    rows = log.repo.audit_rows()
    prev = "0" * 64
    for row in rows:
        body = json.loads(row.body)
        if row.seq == 2:
            body["actor"] = "mallory"
        body["prev"] = prev
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        prev = sha256_hex(text)
        _sql(
            ft,
            f"UPDATE audit_log SET body = '{text}', hash = '{prev}', "
            f"actor = '{body['actor']}' WHERE seq = {row.seq}",
        )
    assert log.verify().ok
    report = log.verify(anchor)
    assert not report.ok and "rewritten" in report.problems[0]


def test_search_is_logged_before_results_and_fails_if_it_cannot_be(
    open_engine: Callable[..., FaceTrace], tmp_path: Path
) -> None:
    ft = open_engine()
    ft.add_source("s", lawful_basis="t")
    ft.ingest([FR / "obama.jpg"], source="s", workers=1)
    result = ft.search(FR / "obama2.jpg", case_id="CASE-7", reason="lead", actor="alice")
    entry = AuditLog(ft.store.engine).entries("CASE-7")[-1]
    assert entry.kind == "search.performed" and entry.actor == "alice"
    assert entry.payload["probe_sha256"] == result.probe_sha256
    assert entry.payload["gallery_size"] == 1 and entry.payload["reason"] == "lead"
    assert entry.payload["results"] == [
        [m.face_id, round(m.distance, 6)] for f in result.faces for m in f.matches
    ]
    assert set(entry.payload) == {
        "case_id",
        "reason",
        "probe_sha256",
        "gallery_size",
        "probe_faces",
        "results",
    }  # no image, no embedding

    class BrokenSink:
        def track(self, event: Event) -> None:
            raise AuditError("disk full")

    ft.events = BrokenSink()
    with pytest.raises(AuditError):
        ft.search(FR / "obama2.jpg", case_id="CASE-7", reason="lead")


def test_cli_head_verify_export(tmp_path: Path) -> None:
    home = tmp_path / "cli"
    with FaceTrace.open(Settings(home=home, workers=1)) as ft:
        log = AuditLog(ft.store.engine)
        for case in ("A", "B", "A"):
            log.track(
                SourceRegistered(
                    actor="x",
                    at=T0,
                    name=case,
                    source_kind="folder",
                    lawful_basis="t",
                    jurisdiction=None,
                )
            )
            log.track(
                SearchPerformed(
                    actor="x",
                    at=T0,
                    case_id=case,
                    reason="r",
                    probe_sha256="0",
                    gallery_size=0,
                    probe_faces=0,
                )
            )
    runner = CliRunner()
    head = runner.invoke(app, ["--home", str(home), "audit", "head"])
    assert head.exit_code == 0, head.output
    anchor = tmp_path / "head.json"
    anchor.write_text(head.output)
    assert AuditHead.from_dict(json.loads(head.output)).count == 6
    ok = runner.invoke(app, ["--home", str(home), "audit", "verify", "--anchor", str(anchor)])
    assert ok.exit_code == 0 and "intact" in ok.output
    export = runner.invoke(app, ["--home", str(home), "audit", "export", "--case", "A"])
    assert export.exit_code == 0, export.output
    trail = json.loads(export.output)
    assert [e["case_id"] for e in trail["entries"]] == ["A", "A"]
    assert all(e["kind"] == "search.performed" for e in trail["entries"])
    with FaceTrace.open(Settings(home=home, workers=1)) as ft:
        _sql(ft, "DELETE FROM audit_log WHERE seq > 4")
    bad = runner.invoke(app, ["--home", str(home), "audit", "verify", "--anchor", str(anchor)])
    assert bad.exit_code == 3 and "TAMPERED" in bad.output
