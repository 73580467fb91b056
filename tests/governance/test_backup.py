"""Backups made while an ingest runs restore to a clean gallery, and a restore
re-applies the takedowns and opt-outs made after the backup."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from facetrace import FaceTrace, Settings
from facetrace.errors import UsageError
from facetrace.governance.backup import BackupManifest, backup, restore
from facetrace.governance.doctor import examine
from facetrace.governance.optout import opt_out
from facetrace.governance.takedown import takedown_source
from facetrace.vision.analyzer import FaceAnalyzer
from tests.conftest import JOHNS
from tests.governance.conftest import ADMIN, task

SALLEY = sorted((JOHNS / "John_Salley").glob("*.jpg"))
SIMM = sorted((JOHNS / "John_Simm").glob("*.jpg"))
SAVAGE = sorted((JOHNS / "John_Savage").glob("*.jpg"))


def _matches(ft: FaceTrace, probe: Path) -> list[tuple[str, float]]:
    result = ft.search(probe, case_id="C", reason="r")
    return [(m.provenance[0].origin, round(m.distance, 5)) for f in result.faces for m in f.matches]


def _photos(home: Path) -> int:
    try:
        with sqlite3.connect(home / "facetrace.db", timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM photos").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _healthy(ft: FaceTrace, allow: frozenset[str] = frozenset()) -> bool:
    found = [f for f in examine(ft, ADMIN).findings if f.count and f.check.value not in allow]
    assert not found, [f.to_dict() for f in found]
    return True


def test_backup_during_ingest_restores_clean(tmp_path: Path, analyzer: FaceAnalyzer) -> None:
    home = tmp_path / "live"
    settings = Settings(home=home, workers=1, match_threshold=0.6)
    with FaceTrace.open(settings, analyzer=analyzer) as ft:
        ft.add_source("s", lawful_basis="t")
        ft.ingest_tasks([task(p, str(p)) for p in SALLEY[:4]], source="s")
    ingest = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "facetrace.cli.main",
            "--home",
            str(home),
            "ingest",
            str(JOHNS),
            "--source",
            "s",
            "--workers",
            "1",
        ],
        env={**os.environ, "FACETRACE_MATCH_THRESHOLD": "0.6"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120  # wait until it has stored a few photos
    while _photos(home) < 7 and time.monotonic() < deadline and ingest.poll() is None:
        time.sleep(0.05)
    with FaceTrace.open(settings, analyzer=analyzer, reconcile=False) as ft:
        during = backup(ft, ADMIN, tmp_path / "during")
        assert ingest.poll() is None, "the ingest finished before the backup; nothing overlapped"
    assert ingest.wait(timeout=300) == 0, ingest.stderr.read() if ingest.stderr else ""
    restored = Settings(home=tmp_path / "restored", workers=1, match_threshold=0.6)
    report = restore(tmp_path / "during", restored, ADMIN, analyzer=analyzer)
    assert report.files == len(during.files) and report.warnings  # nothing was replayed
    with FaceTrace.open(settings, analyzer=analyzer, reconcile=False) as ft:
        total = ft.stats().photos
    with FaceTrace.open(restored, analyzer=analyzer) as ft:
        # The snapshot caught the ingest part-way: consistent, with that job to finish.
        assert _healthy(ft, allow=frozenset({"unfinished_jobs"}))
        stats = ft.stats()
        assert 4 <= stats.photos < total and stats.faces == stats.indexed
        ft.resume_job(1)
        assert ft.stats().photos == total
        assert _healthy(ft)
    # A backup of the finished gallery restores to the same search results.
    with FaceTrace.open(settings, analyzer=analyzer) as ft:
        backup(ft, ADMIN, tmp_path / "after")
        want = _matches(ft, SIMM[0])
    again = Settings(home=tmp_path / "again", workers=1, match_threshold=0.6)
    restore(tmp_path / "after", again, ADMIN, analyzer=analyzer)
    with FaceTrace.open(again, analyzer=analyzer) as ft:
        assert _matches(ft, SIMM[0]) == want and want
        assert _healthy(ft)


@pytest.mark.sqlite_only  # an online backup of the SQLite file; PostgreSQL has pg_dump
def test_restore_reapplies_takedowns_and_optouts(
    open_engine: Callable[..., FaceTrace], tmp_path: Path, analyzer: FaceAnalyzer
) -> None:
    ft = open_engine()
    ft.add_source("kept", lawful_basis="t")
    ft.add_source("gone", lawful_basis="t")
    ft.ingest_tasks([task(p, "kept:" + p.name) for p in SALLEY[1:6] + SIMM[:4]], source="kept")
    ft.ingest_tasks([task(p, "gone:" + p.name) for p in SAVAGE[:4]], source="gone")
    backup(ft, ADMIN, tmp_path / "b")
    # After the backup: a takedown and an opt-out in the live gallery.
    takedown_source(ft, ADMIN, "gone")
    opt_out(ft, ADMIN, SALLEY[0])
    live = {probe: _matches(ft, probe) for probe in (SALLEY[0], SAVAGE[0])}
    salley = {"kept:" + p.name for p in SALLEY[1:6]}
    assert not salley & {o for o, _ in live[SALLEY[0]]}  # the opt-out reached them all

    # Restoring without the live gallery warns that nothing was re-applied ...
    plain = Settings(home=tmp_path / "plain", workers=1, match_threshold=0.6)
    assert restore(tmp_path / "b", plain, ADMIN, analyzer=analyzer).warnings
    # ... and with it, the deleted people stay deleted.
    settings = Settings(home=tmp_path / "restored", workers=1, match_threshold=0.6)
    report = restore(tmp_path / "b", settings, ADMIN, replay_from=ft.home, analyzer=analyzer)
    assert report.takedowns == ["source gone"] and report.templates >= 1
    assert report.faces_removed >= 1 and not report.warnings
    with FaceTrace.open(settings, analyzer=analyzer) as restored:
        for probe, want in live.items():  # the restored gallery answers as the live one
            assert _matches(restored, probe) == want
        with FaceTrace.open(plain, analyzer=analyzer) as stale:  # (the plain one would not)
            assert salley & {o for o, _ in _matches(stale, SALLEY[0])}
        source = restored.store.get_source("gone")
        assert source is not None and source.status == "blocked"
        assert _healthy(restored)
        kinds = [e.kind for e in restored.events.entries()]  # type: ignore[attr-defined]
        assert "gallery.restored" in kinds


@pytest.mark.sqlite_only
def test_restore_refuses_a_changed_backup_or_an_occupied_home(
    open_engine: Callable[..., FaceTrace], tmp_path: Path, analyzer: FaceAnalyzer
) -> None:
    ft = open_engine()
    ft.add_source("s", lawful_basis="t")
    ft.ingest_tasks([task(p, str(p)) for p in SIMM[:2]], source="s")
    manifest = backup(ft, ADMIN, tmp_path / "b")
    assert BackupManifest.load(tmp_path / "b").files == manifest.files
    with pytest.raises(UsageError, match="already holds a gallery"):
        restore(tmp_path / "b", ft.settings, ADMIN, analyzer=analyzer)
    thumb = next(p for p in (tmp_path / "b").rglob("*.jpg"))
    thumb.write_bytes(thumb.read_bytes() + b"x")
    with pytest.raises(UsageError, match="missing or changed"):
        restore(tmp_path / "b", Settings(home=tmp_path / "new"), ADMIN, analyzer=analyzer)
