"""The factory picks the backend from Settings; the CLI drives stats, rebuild, migrate, bench."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from facetrace.cli.index_cmd import bench_index, index_app
from facetrace.config import IndexBackend, Settings
from facetrace.errors import ConfigError
from facetrace.evaluation.bench_index import run_bench
from facetrace.evaluation.facelike import FaceLikeGenerator
from facetrace.index.exact import ExactIndex
from facetrace.index.factory import open_index
from facetrace.index.faiss_backend import FaissIndex


def test_factory_picks_backend_and_location(tmp_path: Path) -> None:
    exact = open_index(Settings(home=tmp_path, index_backend=IndexBackend.EXACT), 8)
    assert isinstance(exact, ExactIndex)
    default = open_index(Settings(home=tmp_path), 8, name="probe")
    assert isinstance(default, FaissIndex)
    default.add(np.array([1]), np.ones((1, 8), np.float32))
    default.save()
    assert (tmp_path / "index" / "probe.faiss" / "manifest.json").exists()
    with pytest.raises(ConfigError):
        open_index(Settings(home=tmp_path, index_backend=IndexBackend.MILVUS), 8)
    with pytest.raises(ConfigError):
        open_index(Settings(home=tmp_path), 8, name="../escape")


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(index_app, name="index")
    bench = typer.Typer()
    bench.command("index")(bench_index)
    app.add_typer(bench, name="bench")
    return app


def test_cli_migrate_stats_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real CLI on a real gallery: migrate exact -> faiss without re-embedding."""
    from facetrace.app import FaceTrace
    from facetrace.cli.main import app
    from tests.conftest import FR

    runner = CliRunner()

    def cli(backend: str, *args: str) -> Result:
        monkeypatch.setenv("FACETRACE_INDEX_BACKEND", backend)
        return runner.invoke(app, ["--home", str(tmp_path), *args])

    settings = Settings(home=tmp_path, index_backend=IndexBackend.EXACT, workers=1)
    with FaceTrace.open(settings) as ft:
        ft.add_source("s", lawful_basis="test")
        ft.ingest([FR / "obama.jpg", FR / "two_people.jpg"], source="s")
        before = ft.search(FR / "obama2.jpg", case_id="C", reason="r").faces[0].matches
    assert len(before) == 3

    result = cli("exact", "index", "migrate", "--to", "faiss")
    assert result.exit_code == 0, result.output
    assert "copied 3 vectors into faiss" in result.output
    # Running it again (as after a crash part-way) completes it and copies nothing twice.
    result = cli("exact", "index", "migrate", "--to", "faiss")
    assert result.exit_code == 0 and "copied 3 vectors into faiss" in result.output
    # Migrating into an index that holds another gallery's vectors is refused.
    from facetrace.index.factory import open_index

    faiss_only = settings.model_copy(update={"index_backend": IndexBackend.FAISS})
    name = next(p.stem for p in (tmp_path / "index").iterdir() if p.suffix == ".faiss")
    stray = open_index(faiss_only, 128, name)
    stray.add(np.array([987_654]), np.ones((1, 128), np.float32))
    stray.save()
    stray.close()
    result = cli("exact", "index", "migrate", "--to", "faiss")
    assert result.exit_code == 1 and "not in this gallery" in result.output, result.output
    stray = open_index(faiss_only, 128, name)
    stray.remove(np.array([987_654]))
    stray.save()
    stray.close()

    result = cli("faiss", "index", "stats", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["count"] == 3
    result = cli("faiss", "index", "rebuild")
    assert result.exit_code == 0 and "3 vectors" in result.output

    faiss_settings = settings.model_copy(update={"index_backend": IndexBackend.FAISS})
    with FaceTrace.open(faiss_settings) as ft:
        assert ft.reconcile().added_to_index == 0  # the migration left nothing to repair
        after = ft.search(FR / "obama2.jpg", case_id="C", reason="r").faces[0].matches
    assert [m.face_id for m in after] == [m.face_id for m in before]
    np.testing.assert_allclose([m.distance for m in after], [m.distance for m in before], atol=1e-5)


def test_cli_bench_index_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _app(),
        ["bench", "index", "--n", "3000", "--queries", "50", "--json", "--workdir", str(tmp_path)],
        obj=Settings(home=tmp_path / "home"),
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == 3000 and report["backend"] == "faiss"
    assert report["recall_at_10"] == 1.0  # flat at this size: exact
    assert report["speedup_vs_exact"] > 0 and report["disk_bytes_per_face"] >= 512
    assert list(tmp_path.iterdir()) == []  # scratch files are removed


def test_generator_resembles_dlib_descriptors() -> None:
    gen = FaceLikeGenerator(seed=0)
    ids, vecs = next(gen.gallery(5000))
    norms = np.linalg.norm(vecs, axis=1)
    assert 1.3 < norms.mean() < 1.6  # dlib descriptors are not unit length
    # Same-identity photos are far closer than different people, as with dlib (0.44 vs 0.82).
    q = gen.queries(200, 5000, stranger_fraction=0.0)
    index = ExactIndex(128)
    index.add(ids, vecs)
    d, _ = index.search(q, 1)
    assert np.median(d[:, 0]) < 0.6
    strangers = gen.queries(200, 5000, stranger_fraction=1.0)
    d, _ = index.search(strangers, 1)
    assert np.median(d[:, 0]) > 0.5


def test_run_bench_reports_exact_backend(tmp_path: Path) -> None:
    result = run_bench(
        Settings(home=tmp_path), 2000, IndexBackend.EXACT, queries=20, workdir=tmp_path
    )
    assert result.recall_at_1 == 1.0 and result.structure == "flat"
