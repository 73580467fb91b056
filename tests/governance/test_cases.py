"""Cases and the case report, on real photos and a real store: what a case records, who
may read it, another organisation's cases not found, and a PDF whose text (read back
with ``pdftotext``) holds the case and says when the audit trail was edited."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetrace import AccessDeniedError, FaceTrace, NotFoundError
from facetrace import operations as ops
from facetrace.cli.main import app
from facetrace.governance import access
from facetrace.governance.access import PUBLIC, Actor
from facetrace.governance.audit import AuditLog
from facetrace.governance.confirm import ConfirmationStatus, confirm_match
from facetrace.governance.takedown import takedown_source
from tests.conftest import FR
from tests.governance.conftest import ADMIN, Clock, task

CASE = "CASE-17"
REASON = "identify the speaker at the rally"
ORIGIN = "https://news.example/2024/obama.jpg"
PAGE = "https://news.example/2024/rally.html"


@dataclass
class World:
    ft: FaceTrace
    admin: Actor
    investigator: Actor
    auditor: Actor
    tokens: dict[str, str]
    probe_sha256: str
    face_id: int
    gallery_size: int


@pytest.fixture
def world(open_engine: Callable[..., FaceTrace], clock: Clock) -> World:
    ft = open_engine()
    tokens = {"admin": access.add_user(ft, ADMIN, "alice", "admin").token}
    admin = access.authenticate(ft, tokens["admin"], "x")
    for name, role in (("ivan", "investigator"), ("audrey", "auditor")):
        tokens[role] = access.add_user(ft, admin, name, role).token
    ops.sources.add(ft, admin, "news", lawful_basis="public-interest journalism")
    ft.ingest_tasks(
        [task(FR / "obama.jpg", ORIGIN, page_url=PAGE), task(FR / "biden.jpg", "/b.jpg")],
        source="news",
        workers=1,
        org=admin.org_id,
    )
    investigator = access.authenticate(ft, tokens["investigator"], "x")
    clock.advance(hours=1)
    result = ops.gallery.search(
        ft, investigator, FR / "obama2.jpg", case_id=CASE, reason=REASON, top_k=1
    )
    best = result.faces[0].matches[0]
    assert best.provenance[0].origin == ORIGIN  # the control: the search found Obama
    return World(
        ft,
        admin,
        investigator,
        access.authenticate(ft, tokens["auditor"], "x"),
        tokens,
        result.probe_sha256,
        best.face_id,
        result.gallery_size,
    )


def test_a_case_shows_who_searched_when_why_and_what_was_found(world: World) -> None:
    record = ops.cases.show(world.ft, world.investigator, CASE)
    (search,) = record.searches
    assert (search.actor, search.reason) == ("ivan (key " + world.investigator.key_id + ")", REASON)
    assert search.probe_sha256 == world.probe_sha256 and search.probe_faces == 1
    assert search.gallery_size == world.gallery_size == 2
    (match,) = search.matches
    assert match.face_id == world.face_id and match.present
    assert [(p.source, p.origin, p.page_url) for p in match.provenance] == [("news", ORIGIN, PAGE)]
    # calibrated confidence: the packaged calibration's rate, times the gallery searched
    assert match.false_match_rate is not None and 0 < match.false_match_rate < 1e-3
    assert match.expected_false_matches == pytest.approx(match.false_match_rate * 2)
    assert record.verify.ok and record.head == AuditLog(world.ft.store.engine).head()
    shown = record.to_dict()
    assert shown["searches"][0]["matches"][0]["origin"] == ORIGIN
    assert "not identifications" in shown["notice"]
    listed = ops.cases.list_cases(world.ft, world.auditor)
    assert [(c.case_id, c.searches, c.confirmations) for c in listed] == [(CASE, 1, 0)]


def test_a_match_deleted_since_the_search_shows_as_deleted(world: World) -> None:
    takedown_source(world.ft, world.admin, "news")
    (match,) = ops.cases.show(world.ft, world.auditor, CASE).searches[0].matches
    assert not match.present and match.provenance == ()
    assert match.to_dict()["source"] is None


def test_confirmations_are_part_of_the_case(world: World, clock: Clock) -> None:
    confirm_match(world.ft, world.investigator, world.face_id, CASE)
    clock.advance(minutes=5)
    confirm_match(world.ft, world.admin, world.face_id, CASE)
    (c,) = ops.cases.show(world.ft, world.auditor, CASE).confirmations
    assert c.status is ConfirmationStatus.CONFIRMED
    assert c.proposed_by.startswith("ivan") and (c.confirmed_by or "").startswith("alice")
    assert c.confirmed_at is not None and c.confirmed_at > c.proposed_at
    # a case with a confirmation but no search is a case too; the latest comes first
    clock.advance(minutes=5)
    confirm_match(world.ft, world.investigator, world.face_id, "CASE-18")
    listed = ops.cases.list_cases(world.ft, world.investigator)
    assert [(x.case_id, x.searches, x.confirmations) for x in listed] == [
        ("CASE-18", 0, 1),
        (CASE, 1, 1),
    ]


def test_another_organisations_case_is_not_found(world: World) -> None:
    acme = access.authenticate(
        world.ft, ops.orgs.add(world.ft, world.admin, "acme", admin="boss").token, "x"
    )
    for op in (ops.cases.show, ops.cases.report):
        with pytest.raises(NotFoundError) as theirs:
            op(world.ft, acme, CASE)
        with pytest.raises(NotFoundError) as missing:
            op(world.ft, acme, "CASE-404")
        assert str(theirs.value).replace(CASE, "X") == str(missing.value).replace("CASE-404", "X")
    assert ops.cases.list_cases(world.ft, acme) == ()


def test_reading_cases_needs_cases_read(world: World) -> None:
    ops.cases.show(world.ft, world.auditor, CASE)  # auditors read cases
    scoped = access.issue_key(world.ft, world.admin, "alice", scopes=["search"]).token
    narrow = access.authenticate(world.ft, scoped, "x")
    log = AuditLog(world.ft.store.engine)
    for actor in (narrow, PUBLIC):
        for op in (ops.cases.show, ops.cases.report):
            with pytest.raises(AccessDeniedError):
                op(world.ft, actor, CASE)
        with pytest.raises(AccessDeniedError):
            ops.cases.list_cases(world.ft, actor)
    assert [e.kind for e in log.entries()][-3:] == ["access.denied"] * 3


def pdf_text(data: bytes, where: Path) -> str:
    """The PDF's text as ``pdftotext -layout`` reads it. Without pdftotext the test
    skips, except in CI (FACETRACE_REQUIRE_POSTGRES set), where it fails."""
    exe = shutil.which("pdftotext")
    if exe is None:
        if os.environ.get("FACETRACE_REQUIRE_POSTGRES"):
            pytest.fail("pdftotext is missing: install poppler-utils to check case reports")
        pytest.skip("needs pdftotext (Debian package poppler-utils) to read the case report")
    where.write_bytes(data)
    out = subprocess.run(
        [exe, "-layout", str(where), "-"], capture_output=True, text=True, check=True
    )
    return out.stdout


def test_the_case_report_holds_the_case_and_the_audit_head(world: World, tmp_path: Path) -> None:
    data = ops.cases.report(world.ft, world.investigator, CASE)
    assert data.startswith(b"%PDF")
    log = AuditLog(world.ft.store.engine)
    head = log.head()
    last = log.entries()[-1]
    assert (last.kind, last.case_id, last.payload["searches"]) == ("case.report", CASE, 1)
    text = pdf_text(data, tmp_path / "report.pdf")
    for expected in (
        "facetrace case report",
        CASE,
        REASON,
        world.probe_sha256,
        "news",
        ORIGIN,
        PAGE,
        "false-match rate",
        "not identifications",
        f"Chain head: {head.count} entries, hash",
        head.hash,  # the head printed includes the report's own entry
        f"Audit chain verified: {head.count} entries, unbroken",
        "facetrace audit verify --anchor head.json",
        f"GET /v1/audit/verify?anchor_count={head.count}&anchor_hash=",
    ):
        assert expected in text, expected
    assert "BROKEN" not in text
    record = ops.cases.show(world.ft, world.investigator, CASE)
    fmr = record.searches[0].matches[0].false_match_rate
    assert fmr is not None and f"{fmr:.1e}" in text


def test_a_report_of_an_edited_audit_trail_says_so(world: World, tmp_path: Path) -> None:
    with world.ft.store.engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE audit_log SET body = replace(body, '{REASON}', 'routine check') "
            f"WHERE case_id = '{CASE}'"
        )
    text = pdf_text(ops.cases.report(world.ft, world.auditor, CASE), tmp_path / "edited.pdf")
    assert "AUDIT CHAIN BROKEN" in text and "may have been edited" in text
    assert "hash does not match its content (changed)" in text
    assert "Audit chain verified" not in text


def test_the_cli_writes_the_report(world: World, tmp_path: Path) -> None:
    settings = world.ft.settings
    env = {"FACETRACE_API_KEY": world.tokens["auditor"], "FACETRACE_MATCH_THRESHOLD": "0.6"}
    if settings.database_url:
        env["FACETRACE_DATABASE_URL"] = settings.database_url
    base = ["--home", str(settings.home), "case"]
    out = tmp_path / "case.pdf"
    result = CliRunner().invoke(app, [*base, "report", CASE, "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF")
    shown = CliRunner().invoke(app, [*base, "show", CASE], env=env)
    assert shown.exit_code == 0 and REASON in shown.output and "verified" in shown.output
    listed = CliRunner().invoke(app, [*base, "list"], env=env)
    assert listed.exit_code == 0 and CASE in listed.output
    missing = CliRunner().invoke(app, [*base, "show", "CASE-404"], env=env)
    assert missing.exit_code == 2 and "no case 'CASE-404'" in missing.output
