"""The fault-injection campaign: kill a command with SIGKILL at a seeded crash point,
restart, and check that nothing acknowledged was lost and nothing deleted came back.

One run:

1. copy a prepared gallery (three sources of real photos; see :func:`prepare`);
2. run one command, chosen by the seed, in a child process with
   ``FACETRACE_FAULT_AT=N`` (:mod:`facetrace.faults`), ``N`` drawn by the seed from the
   crash points that command passes when nothing fails: ingest, takedown, opt-out,
   retention, index rebuild, index migration;
3. **after the crash**, open the gallery (which runs the cheap repairs) and check:

   - the doctor finds nothing but the interrupted work itself (an unfinished job, a
     takedown's leftovers);
   - every photo the killed ingest recorded as added is stored, with its faces in the
     index;

4. re-run the interrupted command (``jobs resume`` for an ingest) and check:

   - the doctor finds nothing;
   - the gallery equals the one the same command makes with no crash: the same photos
     (by SHA-256) and faces (by photo and box), every face in the index and no other
     vector, and no deleted face back in store, index, thumbnails or search.

Run ``r`` runs command ``r mod 6`` (so every command is hit alike) and dies at a crash
point drawn from ``random.Random(f"{seed}:{r}")``; ingest runs with one worker, so a run
is reproduced from ``(seed, r)``. On Milvus (:class:`Backend` with a URI) each run has
a collection of its own, filled from the copied store when the gallery first opens,
and dropped afterwards.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from facetrace.app import FaceTrace
from facetrace.config import IndexBackend, Settings
from facetrace.governance.access import Actor, Role
from facetrace.governance.doctor import Check, examine
from facetrace.ingest.tasks import PhotoTask
from facetrace.store.repository import JobStatus
from facetrace.vision.analyzer import FaceAnalyzer

ADMIN = Actor(name="campaign", role=Role.ADMIN, user_id=None)
COMMANDS = ("ingest", "takedown", "optout", "retention", "rebuild", "migrate")
IN_PROGRESS = {Check.UNFINISHED_JOBS, Check.TAKEDOWN_LEFTOVERS}
"""What a crash may leave for the re-run to finish; anything else found is a failure."""


@dataclass(frozen=True, slots=True)
class Photos:
    """The real photos a campaign uses (folders of JPEGs, one person each)."""

    kept: list[Path]  # source "a", stays
    taken_down: list[Path]  # source "b", taken down
    expiring: list[Path]  # source "c", collected long ago, 30-day retention
    new: Path  # a folder ingested into "a" by the ingest command
    opt_out: Path  # a photo of a person in "a" who opts out


@dataclass(frozen=True, slots=True)
class Backend:
    """The index a campaign runs on: the embedded FAISS default, or Milvus at ``uri``."""

    milvus_uri: str | None = None

    @property
    def name(self) -> str:
        return "milvus" if self.milvus_uri else "faiss"

    def env(self, collection: str) -> dict[str, str]:
        if not self.milvus_uri:
            return {}
        return {
            "FACETRACE_INDEX_BACKEND": "milvus",
            "FACETRACE_MILVUS_URI": self.milvus_uri,
            "FACETRACE_MILVUS_COLLECTION": collection,
        }

    def settings(self, home: Path, collection: str) -> Settings:
        if not self.milvus_uri:
            return Settings(home=home, workers=1)
        return Settings(
            home=home,
            workers=1,
            index_backend=IndexBackend.MILVUS,
            milvus_uri=self.milvus_uri,
            milvus_collection=collection,
        )

    def fresh(self, template: Path, home: Path, collection: str, analyzer: FaceAnalyzer) -> None:
        """Copy the prepared gallery to ``home``; on Milvus, fill its collection."""
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(template, home)
        if self.milvus_uri:
            self.drop(home, collection)
            with FaceTrace.open(self.settings(home, collection), analyzer=analyzer):
                pass  # opening reconciles: every stored face goes into the new collection

    def drop(self, home: Path, collection: str) -> None:
        if self.milvus_uri:
            from facetrace.index.factory import open_index

            index = open_index(self.settings(home, collection), 128, "faces")
            drop = getattr(index, "drop", None)
            if callable(drop):
                drop()
            index.close()


@dataclass
class RunResult:
    run: int
    command: str
    kill_at: int
    points: int
    killed: bool
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "command": self.command,
            "kill_at": self.kill_at,
            "points": self.points,
            "killed": self.killed,
            "ok": self.ok,
            "problems": self.problems,
            "seconds": round(self.seconds, 2),
        }


def _task(path: Path, origin: str, at: datetime) -> PhotoTask:
    return PhotoTask(
        key=origin, origin=origin, page_url=None, collected_at=at, data=path.read_bytes()
    )


def prepare(home: Path, photos: Photos, analyzer: FaceAnalyzer) -> None:
    """The gallery every run starts from."""
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    with FaceTrace.open(Settings(home=home, workers=1), analyzer=analyzer) as ft:
        ft.add_source("a", lawful_basis="campaign")
        ft.add_source("b", lawful_basis="campaign")
        ft.add_source("c", lawful_basis="campaign", policy={"retention_days": 30})
        now = ft.clock()
        for source, paths, at in (
            ("a", photos.kept, now),
            ("b", photos.taken_down, now),
            ("c", photos.expiring, long_ago),
        ):
            ft.ingest_tasks([_task(p, f"{source}:{p.name}", at) for p in paths], source=source)


def command_args(command: str, photos: Photos) -> list[str]:
    """The CLI words of a campaign command."""
    return {
        "ingest": ["ingest", str(photos.new), "--source", "a", "--workers", "1"],
        "takedown": ["takedown", "--source", "b"],
        "optout": ["optout", str(photos.opt_out)],
        "retention": ["retention", "run"],
        "rebuild": ["index", "rebuild"],
        "migrate": ["index", "migrate", "--to", "exact"],
    }[command]


def _run_cli(home: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facetrace.cli.main", "--home", str(home), *args],
        env={**os.environ, "FACETRACE_WORKERS": "1", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def count_points(
    template: Path,
    work: Path,
    command: str,
    photos: Photos,
    backend: Backend,
    analyzer: FaceAnalyzer,
) -> int:
    """Crash points ``command`` passes on the prepared gallery when nothing fails."""
    home = work / f"count-{command}"
    backend.fresh(template, home, f"count_{command}", analyzer)
    counter = work / f"count-{command}.txt"
    env = {"FACETRACE_FAULT_COUNT": str(counter), **backend.env(f"count_{command}")}
    done = _run_cli(home, command_args(command, photos), env)
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed without a fault: {done.stderr[-2000:]}")
    return int(counter.read_text())


Snapshot = dict[str, Any]


def snapshot(ft: FaceTrace) -> Snapshot:
    """What must match the crash-free gallery: photos by SHA-256, faces by photo and box,
    sightings by origin, and whether the index holds exactly the stored faces."""
    ids = [int(i) for i in ft.store.face_ids()]
    records = ft.store.faces(ids)
    with ft.store.engine.connect() as conn:
        shas: dict[int, str] = {
            int(r[0]): str(r[1]) for r in conn.exec_driver_sql("SELECT id, sha256 FROM photos")
        }
        origins = sorted(conn.exec_driver_sql("SELECT origin FROM sightings").scalars())
    faces = sorted(f"{shas[r.photo_id]}:{r.bbox.as_list()}" for r in records.values())
    indexed = {int(i) for i in ft.index.ids()}
    return {
        "photos": sorted(shas.values()),
        "faces": faces,
        "sightings": origins,
        "index_matches_store": indexed == set(ids),
    }


def _doctor_problems(ft: FaceTrace, allowed: set[Check]) -> list[str]:
    report = examine(ft, ADMIN)
    return [
        f"doctor: {f.check.value} x{f.count} {list(f.examples)}"
        for f in report.findings
        if f.count and f.check not in allowed
    ]


def _acknowledged_present(ft: FaceTrace) -> list[str]:
    """Every item a job recorded as added is stored and indexed."""
    problems = []
    indexed = {int(i) for i in ft.index.ids()}
    with ft.store.engine.connect() as conn:
        keys = list(
            conn.exec_driver_sql("SELECT key FROM job_items WHERE status = 'added'").scalars()
        )
        for key in keys:
            rows = conn.exec_driver_sql(
                "SELECT f.id FROM sightings s JOIN faces f ON f.photo_id = s.photo_id "
                "WHERE s.origin = ?",
                (key,),
            ).all()
            held = conn.exec_driver_sql(
                "SELECT count(*) FROM sightings WHERE origin = ?", (key,)
            ).scalar()
            if not held:
                problems.append(f"acknowledged photo lost: {key}")
            problems += [
                f"acknowledged face {r[0]} not indexed" for r in rows if r[0] not in indexed
            ]
    return problems


def _rerun_args(home: Path, command: str, photos: Photos, settings: Settings) -> list[str]:
    if command == "ingest":
        with FaceTrace.open(settings, reconcile=False) as ft:
            unfinished = [j.id for j in ft.store.jobs(1000) if j.status != JobStatus.COMPLETED]
        if unfinished:
            return ["jobs", "resume", str(unfinished[-1]), "--workers", "1"]
    return command_args(command, photos)


def one_run(
    run: int,
    seed: int,
    template: Path,
    work: Path,
    photos: Photos,
    points: dict[str, int],
    expected: dict[str, Snapshot],
    analyzer: FaceAnalyzer,
    backend: Backend | None = None,
) -> RunResult:
    """Run number ``run`` of campaign ``seed``; see the module docstring."""
    backend = backend or Backend()
    rng = random.Random(f"{seed}:{run}")
    command = COMMANDS[run % len(COMMANDS)]
    kill_at = rng.randint(1, points[command])
    result = RunResult(run, command, kill_at, points[command], killed=False)
    start = time.perf_counter()
    home = work / f"run-{run}"
    collection = f"campaign_{seed}_{run}"
    backend.fresh(template, home, collection, analyzer)
    env = backend.env(collection)
    crashed = _run_cli(
        home, command_args(command, photos), {"FACETRACE_FAULT_AT": str(kill_at), **env}
    )
    result.killed = crashed.returncode == -9
    if not result.killed and crashed.returncode != 0:
        result.problems.append(f"exit {crashed.returncode}: {crashed.stderr.strip()[-300:]}")
    settings = backend.settings(home, collection)
    with FaceTrace.open(settings, analyzer=analyzer) as ft:
        result.problems += _doctor_problems(ft, IN_PROGRESS)
        result.problems += _acknowledged_present(ft)
    again = _run_cli(home, _rerun_args(home, command, photos, settings), env)
    if again.returncode != 0:
        result.problems.append(f"re-run failed: {again.stderr.strip()[-300:]}")
    with FaceTrace.open(settings, analyzer=analyzer) as ft:
        result.problems += _doctor_problems(ft, set())
        got = snapshot(ft)
    want = expected[command]
    for key in ("photos", "faces", "sightings"):
        lost = sorted(set(want[key]) - set(got[key]))
        extra = sorted(set(got[key]) - set(want[key]))
        if lost:
            result.problems.append(f"{key} lost: {lost[:3]} ({len(lost)})")
        if extra:
            result.problems.append(f"{key} not expected (resurrected?): {extra[:3]} ({len(extra)})")
    if not got["index_matches_store"]:
        result.problems.append("index does not hold exactly the stored faces")
    if command == "migrate":
        exact = settings.model_copy(update={"index_backend": IndexBackend.EXACT})
        with FaceTrace.open(exact, analyzer=analyzer, reconcile=False) as ft:
            if not snapshot(ft)["index_matches_store"]:
                result.problems.append("the migrated index does not hold exactly the stored faces")
    backend.drop(home, collection)
    shutil.rmtree(home, ignore_errors=True)
    result.seconds = time.perf_counter() - start
    return result


def campaign(
    runs: int,
    seed: int,
    work: Path,
    photos: Photos,
    analyzer: FaceAnalyzer,
    first: int = 0,
    progress: Callable[[RunResult], None] | None = None,
    backend: Backend | None = None,
) -> dict[str, Any]:
    """Prepare, size and run ``runs`` seeded runs; returns the JSON-able report."""
    backend = backend or Backend()
    work.mkdir(parents=True, exist_ok=True)
    template = work / "template"
    shutil.rmtree(template, ignore_errors=True)
    prepare(template, photos, analyzer)
    points = {c: count_points(template, work, c, photos, backend, analyzer) for c in COMMANDS}
    expected: dict[str, Snapshot] = {}
    for c in COMMANDS:
        home = work / f"count-{c}"
        with FaceTrace.open(backend.settings(home, f"count_{c}"), analyzer=analyzer) as ft:
            expected[c] = snapshot(ft)
        backend.drop(home, f"count_{c}")
    results = []
    for run in range(first, first + runs):
        res = one_run(run, seed, template, work, photos, points, expected, analyzer, backend)
        results.append(res)
        if progress is not None:
            progress(res)
    failed = [r for r in results if not r.ok]
    return {
        "backend": backend.name,
        "seed": seed,
        "runs": len(results),
        "first_run": first,
        "killed": sum(r.killed for r in results),
        "failed": len(failed),
        "crash_points": points,
        "by_command": {c: sum(r.command == c for r in results) for c in COMMANDS},
        "failures": [r.to_dict() for r in failed],
        "seconds": round(sum(r.seconds for r in results), 1),
    }


def write_report(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n")
