"""Ingest on a real Ray cluster (a head and two worker nodes on loopback): the same
gallery as a local ingest, and nothing lost or duplicated when a worker node or the
driver is killed mid-job. Metadata in PostgreSQL (SQLite without a server), vectors
in FAISS, and in Milvus as well when a Milvus server is given."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import ray
from sqlalchemy import Engine, create_engine, text
from typer.testing import CliRunner

from facetrace import FaceTrace, Settings
from facetrace.cli.main import app
from facetrace.errors import ClusterError, UsageError
from facetrace.ingest.cluster import RayAnalysis
from facetrace.ingest.executors import TASKS_PER_WORKER
from facetrace.ingest.pipeline import ItemOutcome
from tests.cluster.conftest import RayCluster
from tests.conftest import JOHNS

pytestmark = pytest.mark.slow
SOURCE = "archive"
NEAR_DUPLICATES = -1
"""Off: which of two near-duplicate photos is stored depends on which is analysed
first, and analyses finish in any order with several workers."""


@dataclass(frozen=True)
class Gallery:
    """What an ingest stored: faces per photo (by sha256) and a probe's nearest matches."""

    faces_by_sha: dict[str, int]
    matches: list[tuple[tuple[str, ...], float]]  # (file names it was found at, distance)
    items: dict[str, int] | None = None  # the job's items by outcome (added, duplicate)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Johns but the first photo of each (held out; the first one is the probe)."""
    folder = tmp_path_factory.mktemp("johns")
    for person in sorted(p for p in JOHNS.iterdir() if p.is_dir()):
        for photo in sorted(person.iterdir())[1:]:
            shutil.copy(photo, folder / f"{person.name}_{photo.name}")
    return folder


@pytest.fixture(scope="module")
def probe() -> Path:
    person = sorted(p for p in JOHNS.iterdir() if p.is_dir())[0]
    return sorted(person.iterdir())[0]


def _gallery(ft: FaceTrace, probe: Path) -> Gallery:
    with ft.store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.sha256, count(f.id) FROM photos p "
                "LEFT JOIN faces f ON f.photo_id = p.id GROUP BY p.id, p.sha256"
            )
        ).all()
        twice = conn.execute(
            text("SELECT sha256 FROM photos GROUP BY sha256 HAVING count(*) > 1")
        ).all()
    assert twice == []  # every photo stored once
    result = ft.search(probe, case_id="CASE-1", reason="cluster test", top_k=5)
    first = result.faces[0].matches
    return Gallery(
        faces_by_sha={sha: int(n) for sha, n in rows},
        matches=[
            (tuple(sorted(Path(p.origin).name for p in m.provenance)), m.distance) for m in first
        ],
    )


def _same(got: Gallery, want: Gallery) -> None:
    assert got.faces_by_sha == want.faces_by_sha
    assert [name for name, _ in got.matches] == [name for name, _ in want.matches]
    for (_, d_got), (_, d_want) in zip(got.matches, want.matches, strict=True):
        assert d_got == pytest.approx(d_want, abs=1e-4)


@pytest.fixture(scope="module")
def local(photos: Path, probe: Path, tmp_path_factory: pytest.TempPathFactory) -> Gallery:
    """The same photos ingested by local worker processes (SQLite and FAISS)."""
    settings = Settings(
        home=tmp_path_factory.mktemp("local"), workers=2, near_duplicate_bits=NEAR_DUPLICATES
    )
    with FaceTrace.open(settings) as ft:
        ft.add_source(SOURCE, lawful_basis="test archive")
        summary = ft.ingest([photos], source=SOURCE)
        assert summary.errors == ()
        job = ft.store.job(summary.job_id or 0)
        assert job is not None
        return replace(_gallery(ft, probe), items=job.item_counts)


@pytest.fixture
def cluster_gallery(cluster_settings: Settings) -> Iterator[FaceTrace]:
    with FaceTrace.open(cluster_settings) as ft:
        ft.add_source(SOURCE, lawful_basis="test archive")
        yield ft


def test_a_cluster_ingest_stores_what_a_local_one_does(
    ray_cluster: RayCluster, cluster_gallery: FaceTrace, photos: Path, probe: Path, local: Gallery
) -> None:
    gallery = cluster_gallery
    summary = gallery.ingest([photos], source=SOURCE, cluster=ray_cluster.address)

    assert summary.errors == ()
    assert summary.photos_added == len(local.faces_by_sha)
    assert summary.faces_added == sum(local.faces_by_sha.values())
    assert set(summary.stage_seconds) >= {"decode", "detect", "embed"}  # timed on workers
    _same(_gallery(gallery, probe), local)


STALL_SECONDS = 90.0
"""How long the kill test waits for an analysis before its items become errors."""


@pytest.mark.parametrize("kill_after", [3, 12, 30])
def test_a_worker_node_killed_mid_job_loses_and_duplicates_nothing(
    ray_cluster: RayCluster,
    cluster_gallery: FaceTrace,
    photos: Path,
    probe: Path,
    local: Gallery,
    kill_after: int,
) -> None:
    gallery = cluster_gallery
    killed: list[int] = []
    done: list[ItemOutcome] = []

    def on_item(outcome: ItemOutcome) -> None:
        done.append(outcome)
        if len(done) == kill_after:  # both nodes busy, a few tasks each in flight
            driver_node = ray.get_runtime_context().get_node_id()
            killed.append(ray_cluster.worker_apart_from(driver_node))
            ray_cluster.kill_worker(killed[0])

    gallery.settings.analysis_stall_seconds = STALL_SECONDS
    try:
        summary = gallery.ingest(
            [photos], source=SOURCE, cluster=ray_cluster.address, on_item=on_item
        )
        if summary.errors:
            # Ray re-runs a dead node's tasks elsewhere once the node is declared dead
            # (and the driver submits again those Ray gives up on). On a loaded machine
            # the driver has been seen not to learn it, and then the analyses in flight
            # stall: they are the items' errors, and a resume runs them. Nothing is lost
            # or stored twice either way.
            errors = [e.error for e in summary.errors]
            assert all("no analysis came back" in e for e in errors), errors
            ray_cluster.wait_for_cpus(1)
            summary = gallery.resume_job(summary.job_id or 0, cluster=ray_cluster.address)
    finally:
        if not killed:  # the job ended first
            ray_cluster.kill_worker(ray_cluster.workers[-1])
        ray_cluster.wait_for_cpus(1)
        ray_cluster.add_worker()  # the next test gets two nodes again
    assert killed, "the job ended before a node was killed"

    assert summary.errors == ()
    job = gallery.store.job(summary.job_id or 0)
    assert job is not None and job.status == "completed"
    assert job.item_counts == local.items
    _same(_gallery(gallery, probe), local)


def test_a_driver_killed_mid_job_is_resumed_on_the_cluster(
    ray_cluster: RayCluster,
    cluster_settings: Settings,
    photos: Path,
    probe: Path,
    local: Gallery,
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FACETRACE_API_KEY"}
    env |= {
        "FACETRACE_HOME": str(cluster_settings.home),
        "FACETRACE_INDEX_BACKEND": cluster_settings.index_backend.value,
        "FACETRACE_MILVUS_COLLECTION": cluster_settings.milvus_collection,
        "FACETRACE_NEAR_DUPLICATE_BITS": str(cluster_settings.near_duplicate_bits),
    }
    env |= {"FACETRACE_DATABASE_URL": cluster_settings.database_url or ""}
    env |= {"FACETRACE_MILVUS_URI": cluster_settings.milvus_uri or ""}
    env = {k: v for k, v in env.items() if v}
    cli = [sys.executable, "-m", "facetrace.cli.main"]
    subprocess.run([*cli, "sources", "add", SOURCE, "--basis", "test archive"], env=env, check=True)
    log = tmp_path / "driver.log"
    cluster = ray_cluster.client_address  # Ray Client, as from another machine
    with log.open("wb") as out:
        driver = subprocess.Popen(
            [*cli, "ingest", str(photos), "--source", SOURCE, "--cluster", cluster],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    db = create_engine(cluster_settings.resolved_database_url)
    deadline = time.monotonic() + 120
    try:
        while _photos(db) < 10 and driver.poll() is None:
            assert time.monotonic() < deadline, "the driver stored nothing in 120 s"
            time.sleep(0.1)
    finally:
        db.dispose()
    assert driver.poll() is None, log.read_text()
    driver.kill()  # SIGKILL: no cleanup of any kind
    driver.wait()

    with FaceTrace.open(cluster_settings) as ft:
        (job,) = ft.store.jobs(10)
        assert job.status == "running"
        assert 0 < job.item_counts.get("added", 0) < len(local.faces_by_sha)
        summary = ft.resume_job(job.id, cluster=ray_cluster.address)
        assert summary.errors == ()
        assert ft.store.job(job.id).status == "completed"  # type: ignore[union-attr]
        _same(_gallery(ft, probe), local)


def _photos(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM photos")).scalar() or 0)


def test_an_unusable_cluster_address_is_a_one_line_error(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", workers=1)
    with FaceTrace.open(settings) as ft:
        ft.add_source(SOURCE, lawful_basis="test archive")
        with pytest.raises(ClusterError, match="expected 'auto', 'ray://HOST:PORT'"):
            ft.ingest([JOHNS], source=SOURCE, cluster="http://somewhere")
    home = str(tmp_path / "home")
    args = ["--home", home, "ingest", str(JOHNS), "--source", SOURCE, "--cluster", "nowhere"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert "--cluster 'nowhere': expected" in result.output
    assert "Traceback" not in result.output


def test_bench_times_one_and_two_worker_nodes_against_the_embedded_pipeline(
    ray_cluster: RayCluster, photos: Path, local: Gallery, tmp_path: Path
) -> None:
    from facetrace.evaluation.bench_ingest import bench_cluster_ingest

    settings = Settings(home=tmp_path / "home", near_duplicate_bits=NEAR_DUPLICATES)
    report = bench_cluster_ingest(photos, ray_cluster.address, nodes=(2, 1), settings=settings)

    assert report["node_cpus"] == [1, 1]
    one, two = report["cluster_1_node"], report["cluster_2_nodes"]
    embedded = report["embedded_2_workers"]
    assert (one["cpus"], two["cpus"], embedded["workers"]) == (1, 2, 2)
    assert local.items is not None
    for run in (one, two, embedded):  # the same photos, analysed alike everywhere
        assert (run["images"], run["errors"]) == (sum(local.items.values()), 0)
        assert run["faces"] == sum(local.faces_by_sha.values())
    assert report["scale_out"]["1"] == 1.0
    ratio = two["images_per_s"] / one["images_per_s"]
    assert report["scale_out"]["2"] == pytest.approx(ratio, rel=1e-2)
    assert report["cluster_overhead"] == pytest.approx(
        1 - two["images_per_s"] / embedded["images_per_s"], abs=1e-2
    )
    with pytest.raises(UsageError, match="the cluster has 2 worker nodes"):
        bench_cluster_ingest(photos, ray_cluster.address, nodes=(1, 3), settings=settings)
    with (
        pytest.raises(ClusterError, match="has 2 worker nodes with CPUs, not 3"),
        RayAnalysis.connect(ray_cluster.address, settings, nodes=3),
    ):
        pass
    with RayAnalysis.connect(ray_cluster.address, settings, nodes=1) as one_node:
        assert one_node.capacity == TASKS_PER_WORKER  # one node of one CPU


def test_auto_finds_the_cluster_this_machine_is_a_node_of(
    ray_cluster: RayCluster, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--cluster auto`` on a node: Ray finds its cluster (here through RAY_ADDRESS, as
    on a node whose cluster was started with another temp dir)."""
    monkeypatch.setenv("RAY_ADDRESS", ray_cluster.address)
    few = sorted(photos.iterdir())[:4]
    settings = Settings(home=tmp_path / "home", workers=1, near_duplicate_bits=NEAR_DUPLICATES)
    with FaceTrace.open(settings) as ft:
        ft.add_source(SOURCE, lawful_basis="test archive")
        summary = ft.ingest(few, source=SOURCE, cluster="auto")
    assert summary.errors == () and summary.photos_added == len(few)
    assert summary.faces_added >= len(few)


def test_rays_messages_go_to_stderr_and_leave_stdout_to_the_json(
    ray_cluster: RayCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A driver on the GCS address prints the cluster's errors ("(raylet) A worker
    died ...") through this function of Ray's, to stdout unless redirected."""
    from ray._private.worker import print_to_stdstream

    settings = Settings(home=tmp_path / "home", workers=1)
    with RayAnalysis.connect(ray_cluster.address, settings):
        print_to_stdstream(
            {"lines": ["A worker died or was killed."], "pid": "raylet", "is_err": False},
            ignore_prefix=False,
        )
    captured = capsys.readouterr()
    assert "A worker died" in captured.err
    assert "A worker died" not in captured.out
