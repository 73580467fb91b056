"""Detection, landmarks and descriptors on real photos."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from facetrace import Settings
from facetrace.vision.analyzer import FaceAnalyzer, build_analyzer
from facetrace.vision.imaging import load_image
from tests.conftest import DLIB, FR

LIMITS = {"max_bytes": 50 * 1024 * 1024, "max_pixels": 80_000_000}


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return build_analyzer(Settings())


def faces_in(analyzer: FaceAnalyzer, path):  # type: ignore[no-untyped-def]
    return analyzer.analyze(load_image(path, **LIMITS).pixels)


def test_two_people_yields_two_faces(analyzer: FaceAnalyzer) -> None:
    faces = faces_in(analyzer, FR / "two_people.jpg")
    assert len(faces) == 2
    for f in faces:
        assert f.embedding.shape == (128,)
        assert f.embedding.dtype == np.float32
        assert f.landmarks.shape == (5, 2)
        assert 0.0 < f.quality <= 1.0
        assert f.thumbnail[:3] == b"\xff\xd8\xff"


def test_dog_photo_has_no_human_face(analyzer: FaceAnalyzer) -> None:
    assert faces_in(analyzer, DLIB / "dogs.jpg") == []


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


@pytest.mark.parametrize("name", ["2008_002470.jpg", "2008_007676.jpg"])
def test_small_faces_down_to_40px_are_found(analyzer: FaceAnalyzer, name: str) -> None:
    """dlib's hand-labelled boxes (37-53 px faces): most are found (IoU >= 0.3)."""
    root = ET.parse(DLIB / "testing.xml").getroot()
    image = next(i for i in root.iter("image") if i.get("file") == name)
    truth = [
        (
            int(b.get("left")),  # type: ignore[arg-type]
            int(b.get("top")),  # type: ignore[arg-type]
            int(b.get("left")) + int(b.get("width")),  # type: ignore[arg-type]
            int(b.get("top")) + int(b.get("height")),  # type: ignore[arg-type]
        )
        for b in image.iter("box")
    ]
    found = [tuple(f.bbox.as_list()) for f in faces_in(analyzer, DLIB / name)]
    hits = sum(1 for t in truth if any(iou(t, f) >= 0.3 for f in found))  # type: ignore[arg-type]
    assert min(w for _, _, w, _ in [(0, 0, t[2] - t[0], 0) for t in truth]) < 45
    assert hits >= len(truth) - 1, (hits, len(truth))


def test_same_person_is_closer_than_different_people(analyzer: FaceAnalyzer) -> None:
    obama = faces_in(analyzer, FR / "obama.jpg")[0].embedding
    obama2 = faces_in(analyzer, FR / "obama2.jpg")[0].embedding
    biden = faces_in(analyzer, FR / "biden.jpg")[0].embedding
    same = np.linalg.norm(obama - obama2)
    diff = np.linalg.norm(obama - biden)
    assert same < 0.6 < diff


def test_cnn_detector_finds_the_face(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cnn = build_analyzer(Settings(detector="cnn"))  # type: ignore[arg-type]
    faces = cnn.analyze(load_image(FR / "obama-240p.jpg", **LIMITS).pixels)
    assert len(faces) == 1


def test_only_the_five_point_landmark_model_is_used() -> None:
    from facetrace.vision import dlib_models

    assert "68" not in str(dlib_models.model_path("landmarks5"))


class CountingHog:
    """A HogDetector that records the scales it ran at."""

    def __init__(self, small_faces: str) -> None:
        from facetrace.vision.dlib_models import HogDetector

        self.scales: list[float] = []
        outer = self

        class _Hog(HogDetector):
            def _run(self, image, scale):  # type: ignore[no-untyped-def]
                outer.scales.append(scale)
                return super()._run(image, scale)

        self.detector = _Hog(small_faces=small_faces)


def test_close_up_skips_the_small_face_pass_and_group_photo_runs_it() -> None:
    closeup = load_image(FR / "obama.jpg", **LIMITS).pixels
    group = load_image(DLIB / "2008_002470.jpg", **LIMITS).pixels
    auto = CountingHog("auto")
    assert len(auto.detector.detect(closeup)) == 1
    assert auto.scales == [1.0]
    auto.scales.clear()
    assert len(auto.detector.detect(group)) >= 5
    assert auto.scales == [1.0, 2.0]
    never = CountingHog("never")
    assert len(never.detector.detect(group)) < 5
