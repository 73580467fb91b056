"""The command-line contract that scripts and benchmarks rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetrace.cli.main import app
from tests.conftest import DLIB, FR

runner = CliRunner()


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    code, _, err = run(
        home, "sources", "add", "news", "--basis", "journalism", "--jurisdiction", "GB"
    )
    assert code == 0, err
    return home


def test_ingest_search_verify_stats_json_contract(home: Path, tmp_path: Path) -> None:
    code, out, err = run(
        home,
        "ingest",
        str(FR / "obama.jpg"),
        str(FR / "biden.jpg"),
        str(DLIB / "dogs.jpg"),
        "--source",
        "news",
        "--json",
        "--workers",
        "1",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert {"photos_seen", "photos_added", "duplicates", "faces_added", "errors"} <= set(summary)
    assert (summary["photos_seen"], summary["photos_added"], summary["faces_added"]) == (3, 3, 2)

    code, out, err = run(
        home, "search", str(FR / "obama2.jpg"), "--case", "C1", "--reason", "t", "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert len(result["faces"]) == 1
    face = result["faces"][0]
    assert len(face["bbox"]) == 4
    best = face["matches"][0]
    assert {
        "face_id",
        "photo_id",
        "distance",
        "score",
        "source",
        "origin",
        "page_url",
        "collected_at",
        "bbox",
    } <= set(best)
    assert Path(best["origin"]).name == "obama.jpg" and best["source"] == "news"
    assert best["distance"] < face["matches"][1]["distance"]

    code, out, _ = run(home, "verify", str(FR / "obama.jpg"), str(FR / "obama2.jpg"), "--json")
    assert code == 0
    verdict = json.loads(out)
    assert verdict["same_person"] is True and verdict["distance"] < 0.6

    code, out, _ = run(home, "stats", "--json")
    assert json.loads(out) == {"sources": 1, "photos": 3, "faces": 2, "indexed": 2}


def test_search_without_case_and_reason_is_refused(home: Path) -> None:
    code, out, err = run(home, "search", str(FR / "obama2.jpg"))
    assert code != 0
    assert "--case" in err and "--reason" in err
    assert "Traceback" not in out + err


def test_faceless_probe_says_so(home: Path) -> None:
    code, out, _ = run(home, "search", str(DLIB / "dogs.jpg"), "--case", "C", "--reason", "r")
    assert code == 0 and "No face found" in out
    code, out, _ = run(
        home, "search", str(DLIB / "dogs.jpg"), "--case", "C", "--reason", "r", "--json"
    )
    assert json.loads(out)["faces"] == []


def test_unknown_source_error_says_how_to_register(home: Path) -> None:
    code, _out, err = run(home, "ingest", str(FR / "obama.jpg"), "--source", "elsewhere")
    assert code == 2
    assert "facetrace sources add elsewhere --basis" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_probe_is_one_line_error(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    code, out, err = run(home, "search", str(bad), "--case", "C", "--reason", "r")
    assert code == 2
    assert err.startswith("error: not a supported image")
    assert "Traceback" not in out + err
    code, _, err = run(home, "verify", str(tmp_path / "missing.jpg"), str(FR / "obama.jpg"))
    assert code == 2 and "cannot read" in err


def test_text_mode_search_prints_a_table(home: Path) -> None:
    run(home, "ingest", str(FR / "obama.jpg"), "--source", "news", "--workers", "1")
    code, out, _ = run(home, "search", str(FR / "obama2.jpg"), "--case", "C", "--reason", "r")
    assert code == 0
    assert "investigative leads" in out and "news" in out


def test_demo_builds_a_gallery_and_prints_matches(tmp_path: Path) -> None:
    code, out, err = run(tmp_path / "h", "demo")
    assert code == 0, err
    assert "demo searches" in out
    assert "John_Simm.jpg" in out and "obama2.jpg" in out
    assert out.count(" yes ") >= 6
