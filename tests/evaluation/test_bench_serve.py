"""``facetrace bench serve`` end to end: a real server subprocess, real clients."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from facetrace.cli.main import app
from tests.conftest import FR


def test_bench_serve_small_run(tmp_path: Path) -> None:
    args = ["--home", str(tmp_path / "home"), "bench", "serve", "--n", "300"]
    args += ["--clients", "2", "--searches", "3", "--probe", str(FR / "obama2.jpg")]
    args += ["--photo", str(FR / "obama.jpg"), "--workdir", str(tmp_path), "--json"]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_faces"] == 301 and report["clients"] == 2
    assert report["searches"] == 6 and report["errors"] == 0, report["first_error"]
    assert report["top_match_real"] == 6
    assert report["inprocess_searches"] == 6 and report["inprocess_top_match_real"] == 6
    assert 0 < report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]
    assert report["searches_per_s"] > 0 and report["inprocess_searches_per_s"] > 0
    assert report["ratio_throughput_vs_inprocess"] > 0
    assert report["ratio_p50_vs_inprocess"] > 0
    assert list(tmp_path.glob("bench-serve-*")) == []  # the gallery is removed


def test_bench_serve_refuses_a_missing_probe(tmp_path: Path) -> None:
    args = ["--home", str(tmp_path / "home"), "bench", "serve", "--probe", str(tmp_path / "x.jpg")]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 2
    assert "is not a file" in result.stderr
