"""Several processes writing one gallery at once, as several nodes do: real processes,
on SQLite and on PostgreSQL, with the vectors in Milvus (the embedded FAISS index has
one writer, so a second ingesting process would be refused there)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from facetrace import FaceTrace, Settings
from facetrace.governance.audit import AuditLog
from facetrace.governance.doctor import Check, examine
from tests.conftest import JOHNS
from tests.governance.conftest import ADMIN

MILVUS = os.environ.get("FACETRACE_TEST_MILVUS_URI")
needs_milvus = pytest.mark.skipif(not MILVUS, reason="FACETRACE_TEST_MILVUS_URI is not set")


def _env(home: Path, database_url: str | None, collection: str | None = None) -> dict[str, str]:
    env = {**os.environ, "FACETRACE_HOME": str(home), "FACETRACE_WORKERS": "1"}
    env.pop("FACETRACE_API_KEY", None)
    if database_url:
        env["FACETRACE_DATABASE_URL"] = database_url
    if collection:
        env |= {
            "FACETRACE_INDEX_BACKEND": "milvus",
            "FACETRACE_MILVUS_URI": str(MILVUS),
            "FACETRACE_MILVUS_COLLECTION": collection,
        }
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "facetrace.cli.main", *args]


def _start_ingest(photos: Path, source: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _cli("ingest", str(photos), "--source", source, "--json"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _when_stored(url: str, ingest: subprocess.Popen[str], sightings: int) -> None:
    """Wait until the ingest has stored ``sightings`` sightings (or ended)."""
    db = create_engine(url)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and ingest.poll() is None:
        with db.connect() as conn:
            if (conn.execute(text("SELECT count(*) FROM sightings")).scalar() or 0) >= sightings:
                break
        time.sleep(0.05)
    db.dispose()


def _milvus_gallery(home: Path, database_url: str | None, env: dict[str, str]) -> FaceTrace:
    """The gallery the processes wrote, opened without repairs."""
    settings = Settings(
        home=home,
        database_url=database_url,
        index_backend="milvus",  # type: ignore[arg-type]
        milvus_uri=MILVUS,
        milvus_collection=env["FACETRACE_MILVUS_COLLECTION"],
    )
    return FaceTrace.open(settings, reconcile=False)


@needs_milvus
@pytest.mark.slow
def test_two_nodes_ingesting_the_same_photos_store_each_once_with_both_sightings(
    tmp_path: Path, database_url: str | None
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for person in sorted(JOHNS.iterdir()):
        if person.is_dir():
            for photo in sorted(person.iterdir())[:2]:
                shutil.copy(photo, photos / f"{person.name}-{photo.name}")
    files = sorted(photos.iterdir())
    home = tmp_path / "home"
    env = _env(home, database_url, f"t_{uuid.uuid4().hex[:12]}")
    for name in ("node-a", "node-b"):
        subprocess.run(_cli("sources", "add", name, "--basis", "test"), env=env, check=True)
    runs = [_start_ingest(photos, name, env) for name in ("node-a", "node-b")]
    outputs = [r.communicate(timeout=600) for r in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
        assert '"errors": []' in out.replace("\n", "").replace("  ", "") or '"errors": []' in out
    with _milvus_gallery(home, database_url, env) as ft, ft.store.engine.connect() as conn:
        count = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("photos", "sightings", "faces")
        }
        per_photo = conn.execute(
            text("SELECT photo_id, count(*) FROM sightings GROUP BY photo_id")
        ).all()
        indexed = ft.index.count()
    assert count["photos"] == len(files)  # each photo once
    assert count["sightings"] == 2 * len(files)  # found by both nodes
    assert {n for _, n in per_photo} == {2}
    assert indexed == count["faces"]  # each face's vector once


@pytest.mark.slow
def test_the_audit_chain_stays_one_chain_under_concurrent_writers(
    tmp_path: Path, database_url: str | None
) -> None:
    home = tmp_path / "home"
    url = database_url or f"sqlite:///{(home / 'facetrace.db').resolve()}"
    with FaceTrace.open(Settings(home=home, database_url=database_url)):
        pass  # created and migrated
    script = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from sqlalchemy import create_engine\n"
        "from facetrace.events import SignedOut\n"
        "from facetrace.governance.audit import AuditLog\n"
        "from facetrace.store.repository import create_db_engine\n"
        "log = AuditLog(create_db_engine(sys.argv[1]))\n"
        "for i in range(40):\n"
        "    log.track(SignedOut(actor=f'writer {sys.argv[2]}', at=datetime.now(UTC)))\n"
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", script, url, str(n)], stderr=subprocess.PIPE)
        for n in range(4)
    ]
    for w in writers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err.decode()
    engine = create_engine(url)
    report = AuditLog(engine).verify()
    entries = AuditLog(engine).entries()
    engine.dispose()
    assert report.ok, report.problems
    writes = [e for e in entries if e.kind == "session.signed_out"]
    assert len(writes) == 160
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))


@needs_milvus
@pytest.mark.slow
def test_a_takedown_during_an_ingest_of_its_source_leaves_nothing(
    tmp_path: Path, database_url: str | None
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for person in sorted(JOHNS.iterdir()):
        if person.is_dir():
            for photo in sorted(person.iterdir()):
                shutil.copy(photo, photos / f"{person.name}-{photo.name}")
    home = tmp_path / "home"
    env = _env(home, database_url, f"t_{uuid.uuid4().hex[:12]}")
    subprocess.run(_cli("sources", "add", "s", "--basis", "test"), env=env, check=True)
    ingest = _start_ingest(photos, "s", env)
    url = database_url or f"sqlite:///{(home / 'facetrace.db').resolve()}"
    _when_stored(url, ingest, 1)
    db = create_engine(url)
    takedown = subprocess.run(
        _cli("takedown", "--source", "s", "--json"), env=env, capture_output=True, text=True
    )
    _, err = ingest.communicate(timeout=600)
    assert takedown.returncode == 0, takedown.stderr
    assert "Traceback" not in err and "unexpected" not in err, err
    assert ingest.returncode == 0, err  # the items after the block are refused, one by one
    with db.connect() as conn:
        left = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("photos", "sightings", "faces")
        }
        status = conn.execute(text("SELECT status FROM sources WHERE name = 's'")).scalar()
    db.dispose()
    assert left == {"photos": 0, "sightings": 0, "faces": 0}
    assert status == "blocked"
    with _milvus_gallery(home, database_url, env) as ft:
        assert ft.index.count() == 0  # no vector of the source's faces either
        assert not ft.orphan_thumbnails()


@needs_milvus
@pytest.mark.slow
def test_an_optout_during_an_ingest_reaches_that_ingest_too(
    tmp_path: Path, database_url: str | None
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    person = JOHNS / "John_Simm"
    reference = sorted(person.iterdir())[0]
    for folder in sorted(JOHNS.iterdir()):  # the person's photos first, others around them
        if folder.is_dir():
            for photo in sorted(folder.iterdir()):
                if photo != reference:
                    shutil.copy(photo, photos / f"{folder.name}-{photo.name}")
    home = tmp_path / "home"
    env = _env(home, database_url, f"t_{uuid.uuid4().hex[:12]}")
    subprocess.run(_cli("sources", "add", "s", "--basis", "test"), env=env, check=True)
    ingest = _start_ingest(photos, "s", env)
    _when_stored(database_url or f"sqlite:///{(home / 'facetrace.db').resolve()}", ingest, 8)
    optout = subprocess.run(
        _cli("optout", str(reference), "--json"), env=env, capture_output=True, text=True
    )
    _, err = ingest.communicate(timeout=600)
    assert optout.returncode == 0, optout.stderr
    assert ingest.returncode == 0 and "unexpected" not in err, err
    with _milvus_gallery(home, database_url, env) as ft:
        report = examine(ft, ADMIN)
        by_check = {f.check: f.count for f in report.findings}
        stored = ft.stats().faces
    assert by_check[Check.OPTED_OUT_FACES] == 0  # no face the opt-out covers was kept
    assert stored >= 30  # the other Johns are there
