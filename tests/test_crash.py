"""An ingest killed with SIGKILL at any point, then re-run, loses and duplicates nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facetrace import FaceTrace, Settings
from facetrace.ingest.folder import iter_files
from tests.conftest import JOHNS


def _cli(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "facetrace.cli.main", "--home", str(home), *args]


def _committed_photos(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM photos").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, int, int]:
    """(photos, faces, sightings) of the same ingest run without interruption."""
    home = tmp_path_factory.mktemp("reference")
    with FaceTrace.open(Settings(home=home)) as ft:
        ft.add_source("johns", lawful_basis="test")
        ft.ingest([JOHNS], source="johns", workers=1)
        stats = ft.stats()
    with sqlite3.connect(home / "facetrace.db") as conn:
        sightings = conn.execute("SELECT count(*) FROM sightings").fetchone()[0]
    return stats.photos, stats.faces, sightings


@pytest.mark.parametrize(
    ("kill_after", "blob_store"), [(1, "folder"), (9, "folder"), (23, "folder"), (9, "database")]
)
def test_killed_ingest_rerun_leaves_no_duplicates_or_orphans(
    tmp_path: Path, kill_after: int, blob_store: str, reference: tuple[int, int, int]
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FACETRACE_BLOB_STORE": blob_store}
    subprocess.run(_cli(home, "sources", "add", "johns", "--basis", "test"), check=True, env=env)
    proc = subprocess.Popen(
        _cli(home, "ingest", str(JOHNS), "--source", "johns", "--workers", "1"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    db = home / "facetrace.db"
    while _committed_photos(db) < kill_after and time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _committed_photos(db) < 55, "the ingest finished before it could be killed"

    rerun = subprocess.run(
        _cli(home, "ingest", str(JOHNS), "--source", "johns", "--workers", "1", "--json"),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"errors": []' in rerun.stdout

    files = list(iter_files([JOHNS]))
    ref_photos, ref_faces, ref_sightings = reference
    assert ref_sightings == len(files)
    with FaceTrace.open(Settings(home=home, blob_store=blob_store)) as ft:  # type: ignore[arg-type]
        stats = ft.stats()
        assert (stats.photos, stats.faces) == (ref_photos, ref_faces)
        face_ids = sorted(ft.store.face_ids().tolist())
        assert len(face_ids) == len(set(face_ids)) == stats.faces
        # Every committed face is searchable, and nothing else is in the index.
        assert sorted(ft.index.ids().tolist()) == face_ids
        # Every thumbnail referenced exists; none is unreferenced (nor half-written).
        referenced = ft.store.thumbnails()
        assert ft.blobs.names() == referenced
        on_disk = {p.relative_to(home).as_posix() for p in home.glob("thumbs/**/*") if p.is_file()}
        assert on_disk == (referenced if blob_store == "folder" else set())
    with sqlite3.connect(home / "facetrace.db") as conn:
        dupes = conn.execute(
            "SELECT count(*) FROM (SELECT sha256 FROM photos GROUP BY sha256 HAVING count(*) > 1)"
        ).fetchone()[0]
        sightings = conn.execute("SELECT count(*) FROM sightings").fetchone()[0]
    assert dupes == 0
    assert sightings == len(files)


def test_a_search_during_an_ingest_does_not_disturb_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run(_cli(home, "sources", "add", "johns", "--basis", "test"), check=True, env=env)
    ingest = subprocess.Popen(
        _cli(home, "ingest", str(JOHNS), "--source", "johns", "--workers", "1", "--json"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while _committed_photos(home / "facetrace.db") < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    probe = sorted((JOHNS / "John_Simm").glob("*.jpg"))[0]
    searched = subprocess.run(
        _cli(home, "search", str(probe), "--case", "C", "--reason", "r", "--json"),
        env=env,
        capture_output=True,
        text=True,
    )
    out, err = ingest.communicate(timeout=300)
    assert searched.returncode == 0, searched.stderr
    assert ingest.returncode == 0 and '"errors": []' in out, err
    with FaceTrace.open(Settings(home=home)) as ft:
        stats = ft.stats()
        assert stats.faces == stats.indexed > 0
