"""The doctor finds each kind of damage done on purpose, repairs what the store can
repair, and says what it cannot."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from typer.testing import CliRunner

from facetrace import FaceTrace
from facetrace.cli.main import app
from facetrace.governance.doctor import Check, DoctorReport, examine
from facetrace.governance.repository import GovernanceStore
from facetrace.identity.repository import IdentityStore
from tests.conftest import JOHNS
from tests.governance.conftest import ADMIN, task

SALLEY = sorted((JOHNS / "John_Salley").glob("*.jpg"))
SIMM = sorted((JOHNS / "John_Simm").glob("*.jpg"))


def _counts(report: DoctorReport) -> dict[Check, tuple[int, int]]:
    return {f.check: (f.count, f.repaired) for f in report.findings if f.count}


def _gallery(open_engine: Callable[..., FaceTrace]) -> FaceTrace:
    ft = open_engine()
    ft.add_source("a", lawful_basis="t")
    ft.add_source("b", lawful_basis="t")
    ft.ingest_tasks([task(p, str(p)) for p in SALLEY[:3]], source="a", workers=1)
    ft.ingest_tasks([task(p, "https://news.example/" + p.name) for p in SIMM[:3]], source="b")
    return ft


def test_a_healthy_gallery_is_healthy(open_engine: Callable[..., FaceTrace]) -> None:
    ft = _gallery(open_engine)
    report = examine(ft, ADMIN)
    assert report.healthy and not _counts(report)


def test_doctor_finds_and_repairs_damage(open_engine: Callable[..., FaceTrace]) -> None:
    ft = _gallery(open_engine)
    ids = [int(i) for i in ft.store.face_ids()]
    # 1. a face whose vector is gone from the index, and a vector with no face
    ft.index.remove(np.array(ids[:1]))
    ft.index.add(np.array([999_999]), ft.store.embeddings(ids[1:2], 128)[ids[1]][None, :])
    # 2. an orphan thumbnail (a file, or a blobs row on PostgreSQL)
    stray = "thumbs/zz/stray.jpg"
    ft.blobs.put({stray: b"\xff\xd8 not referenced"})
    # 3. an edited audit row
    with ft.store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    # 4. a face stored after its person opted out (as if ingest raced the opt-out)
    GovernanceStore(ft.store.engine).add_templates(
        ft.analyzer.model_id,
        "f" * 32,
        ft.store.embeddings(ids[-1:], 128)[ids[-1]],
        np.zeros((0, 128)),
    )
    # 5. a takedown that died after blocking the source, before deleting anything
    ft.store.set_source_status(ft.store.get_source("b").id, "blocked")
    # 6. a face with no person, and a person with no face
    people = IdentityStore(ft.store.engine)
    with ft.store.engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM face_identities WHERE face_id = {ids[0]}")
    people.create(ft.analyzer.model_id, ft.clock())
    # 7. an ingest job that never finished
    ft.store.create_job(ft.store.get_source("a").id, "folder", {"paths": []}, ft.clock())

    found = _counts(examine(ft, ADMIN))
    assert found[Check.MISSING_VECTORS] == (1, 0)
    assert found[Check.ORPHAN_VECTORS] == (1, 0)
    assert found[Check.ORPHAN_THUMBNAILS] == (1, 0)
    assert found[Check.AUDIT_CHAIN][0] >= 1
    assert found[Check.OPTED_OUT_FACES][0] >= 1
    assert found[Check.TAKEDOWN_LEFTOVERS] == (3, 0)
    assert found[Check.UNPLACED_FACES] == (1, 0)
    assert found[Check.EMPTY_PEOPLE][0] >= 1
    assert found[Check.UNFINISHED_JOBS] == (1, 0)
    assert ft.blobs.get(stray) is not None  # looking changes nothing

    repaired = examine(ft, ADMIN, repair=True)
    done = {f.check: f for f in repaired.findings}
    for check in (
        Check.MISSING_VECTORS,
        Check.ORPHAN_VECTORS,
        Check.ORPHAN_THUMBNAILS,
        Check.OPTED_OUT_FACES,
        Check.TAKEDOWN_LEFTOVERS,
        Check.UNPLACED_FACES,
        Check.EMPTY_PEOPLE,
    ):
        assert done[check].remaining == 0, done[check]
    assert ft.blobs.get(stray) is None
    # What cannot be repaired is said, not hidden.
    assert done[Check.AUDIT_CHAIN].remaining and not done[Check.AUDIT_CHAIN].repairable
    assert "never rewritten" in done[Check.AUDIT_CHAIN].advice
    assert "jobs resume" in done[Check.UNFINISHED_JOBS].advice
    assert not repaired.healthy

    after = _counts(examine(ft, ADMIN))
    assert set(after) == {Check.AUDIT_CHAIN, Check.UNFINISHED_JOBS}
    # The taken-down source left nothing, and the opted-out face is gone from search.
    assert not GovernanceStore(ft.store.engine).sightings_of_source(ft.store.get_source("b").id)
    assert ids[-1] not in {int(i) for i in ft.index.ids()}
    with ft.store.engine.connect() as conn:
        kinds = list(conn.exec_driver_sql("SELECT kind FROM audit_log").scalars())
    assert kinds.count("doctor.ran") == 3


def test_a_source_blocked_by_hand_keeps_its_photos(open_engine: Callable[..., FaceTrace]) -> None:
    ft = _gallery(open_engine)
    ft.set_source_status("b", "blocked")  # 'sources block': stop collecting, keep what is held
    assert examine(ft, ADMIN).healthy


def test_doctor_command_exits_1_while_problems_remain(
    open_engine: Callable[..., FaceTrace],
) -> None:
    ft = _gallery(open_engine)
    home = ft.home
    stray = "thumbs/stray.jpg"
    ft.blobs.put({stray: b"x"})
    ft.close()
    runner = CliRunner()
    env = {
        "FACETRACE_MATCH_THRESHOLD": "0.6",
        "FACETRACE_DATABASE_URL": ft.settings.database_url or "",
    }
    # Opening the gallery runs the cheap repairs (an orphan thumbnail is one of them).
    healthy = runner.invoke(app, ["--home", str(home), "doctor", "--json"], env=env)
    assert healthy.exit_code == 0, healthy.output
    assert ft.blobs.get(stray) is None
    with (
        FaceTrace.open(ft.settings, analyzer=ft.analyzer) as again,
        again.store.engine.begin() as c,
    ):
        c.exec_driver_sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    broken = runner.invoke(app, ["--home", str(home), "doctor", "--repair"], env=env)
    assert broken.exit_code == 1 and "audit_chain" in broken.output
