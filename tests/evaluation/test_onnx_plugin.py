"""The ONNX plug-in end to end, with a model the test builds: ingest, search, calibrate,
eval pairs, and galleries that refuse another model's embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facetrace import FaceTrace, Settings
from facetrace.cli.main import app
from facetrace.errors import ModelMismatchError
from facetrace.vision.onnx_embedder import (
    ARCFACE_TEMPLATE,
    OnnxEmbedder,
    align_chip,
    similarity_transform,
)
from tests.conftest import FR, JOHNS
from tests.evaluation.onnx_model import build_projection_model

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_projection_model(tmp_path_factory.mktemp("onnx") / "proj.onnx")


def onnx_settings(home: Path, model: Path, **extra: object) -> Settings:
    return Settings(home=home, workers=1, embedder="onnx", onnx_model_path=model, **extra)  # type: ignore[arg-type]


def test_similarity_transform_recovers_a_known_one() -> None:
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -2.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE
    m = similarity_transform(src, src @ rot.T + shift)
    assert np.allclose(m[:, :2], rot) and np.allclose(m[:, 2], shift)


def test_chip_puts_the_eyes_on_the_arcface_template() -> None:
    # Landmarks placed by a known similarity of the template: eye centres and nose agree
    # with it, so the chip must bring two bright dots at the eye centres back onto it.
    angle, scale, shift = 0.2, 1.6, np.array([40.0, 30.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    eyes = ARCFACE_TEMPLATE[:2] @ rot.T + shift
    nose = ARCFACE_TEMPLATE[2] @ rot.T + shift
    half = rot @ np.array([6.0, 0.0])
    landmarks = np.array(
        [eyes[1] + half, eyes[1] - half, eyes[0] - half, eyes[0] + half, nose], dtype=np.float32
    )
    image = np.zeros((260, 260, 3), dtype=np.uint8)
    for x, y in eyes:
        image[round(y) - 2 : round(y) + 3, round(x) - 2 : round(x) + 3] = 255
    chip = align_chip(image, landmarks)
    assert chip.shape == (112, 112, 3)
    ys, xs = np.nonzero(chip[:, :, 0] > 100)
    for side, target in ((xs < 56, ARCFACE_TEMPLATE[0]), (xs >= 56, ARCFACE_TEMPLATE[1])):
        assert abs(xs[side].mean() - target[0]) < 1.0
        assert abs(ys[side].mean() - target[1]) < 1.0


def test_embedder_reads_its_contract_from_the_model(model: Path, tmp_path: Path) -> None:
    emb = OnnxEmbedder(model)
    assert emb.dim == 64 and emb.model_id.startswith("onnx:") and len(emb.model_id) == 21
    out = emb.embed(np.full((3, 112, 112, 3), 200, dtype=np.uint8))
    assert out.shape == (3, 64) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    other = build_projection_model(tmp_path / "other.onnx", seed=1)
    assert OnnxEmbedder(other).model_id != emb.model_id


def test_ingest_search_calibrate_and_evaluate_with_an_onnx_model(
    model: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    runner = CliRunner()
    env = {
        "FACETRACE_EMBEDDER": "onnx",
        "FACETRACE_ONNX_MODEL_PATH": str(model),
        "FACETRACE_WORKERS": "1",
        "FACETRACE_EMBED_FLIP": "false",
    }
    # Without a calibration table and without an explicit threshold, search says why it can't.
    with FaceTrace.open(onnx_settings(home, model, embed_flip=False)) as ft:
        assert ft.calibration is None
        ft.add_source("s", lawful_basis="test")
        summary = ft.ingest([FR / "obama.jpg", FR / "biden.jpg"], source="s")
        assert summary.faces_added == 2
    # Calibrate on the Johns (5 people): the table lands in the home and is used from then on.
    result = runner.invoke(
        app,
        ["--home", str(home), "eval", "calibrate", "--images", str(JOHNS), "--json"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    cal = json.loads(result.output)
    assert cal["model_id"].startswith("onnx:") and cal["impostor_pairs"] > 1000
    assert Path(cal["table"]).is_file()
    with FaceTrace.open(onnx_settings(home, model, embed_flip=False)) as ft:
        assert ft.calibration is not None
        res = ft.search(FR / "obama.jpg", case_id="c", reason="test")
        best = res.faces[0].matches[0]
        assert best.distance < 1e-3  # the very same photo, the same pipeline
        assert best.false_match_rate is not None and 0 < best.false_match_rate <= 1
        assert best.expected_false_matches == pytest.approx(best.false_match_rate * 2)
        v = ft.verify(FR / "obama.jpg", FR / "obama.jpg")
        assert v.same_person and v.false_match_rate is not None
    # eval pairs on a tiny CSV of fixture photos runs the same ONNX path.
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "a,b,same\n"
        "face_recognition/obama.jpg,face_recognition/obama2.jpg,1\n"
        "face_recognition/obama.jpg,face_recognition/obama3.jpg,1\n"
        "face_recognition/obama.jpg,face_recognition/biden.jpg,0\n"
        "face_recognition/obama2.jpg,face_recognition/biden.jpg,0\n"
    )
    result = runner.invoke(
        app,
        [
            *("--home", str(home), "eval", "pairs", "--pairs", str(pairs)),
            *("--images", str(FR.parent), "--json", "--plot", str(tmp_path / "roc.png")),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["results"][0]
    assert report["pairs"] == 4 and report["images"] == 4
    assert 0.0 <= report["accuracy"] <= 1.0 and 0.0 <= report["roc_auc"] <= 1.0
    assert (tmp_path / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_gallery_refuses_another_models_embeddings(model: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with FaceTrace.open(onnx_settings(home, model, embed_flip=False)) as ft:
        ft.add_source("s", lawful_basis="test")
        ft.ingest([FR / "obama.jpg"], source="s")
        onnx_id = ft.analyzer.model_id
    other = build_projection_model(tmp_path / "other.onnx", seed=7)
    with pytest.raises(ModelMismatchError, match=onnx_id):
        FaceTrace.open(onnx_settings(home, other))
    with pytest.raises(ModelMismatchError, match=onnx_id):
        FaceTrace.open(Settings(home=home, workers=1))
