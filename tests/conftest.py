"""Shared fixtures: real photos from tests/fixtures, real SQLite files, a real index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrace import FaceTrace, Settings
from facetrace.vision.analyzer import FaceAnalyzer, build_analyzer

FIXTURES = Path(__file__).parent / "fixtures"
FR = FIXTURES / "face_recognition"
DLIB = FIXTURES / "dlib_faces"
JOHNS = FIXTURES / "johns"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a fresh gallery in a temporary folder."""
    return Settings(home=tmp_path / "home", workers=1)


@pytest.fixture
def engine(settings: Settings) -> Iterator[FaceTrace]:
    with FaceTrace.open(settings) as ft:
        yield ft


@pytest.fixture(scope="session")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> FaceAnalyzer:
    """The real analyzer, shared so the descriptor model is converted and loaded once."""
    return build_analyzer(Settings(home=tmp_path_factory.mktemp("models"), workers=1))


@pytest.fixture(scope="session")
def gallery_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gallery built once per session: Obama, Biden, two-person photos and the Johns,
    except one held-out photo per John (used as probes)."""
    home = tmp_path_factory.mktemp("gallery")
    settings = Settings(home=home, workers=1)
    with FaceTrace.open(settings) as ft:
        ft.add_source("news", lawful_basis="public-interest journalism archive")
        ft.ingest(
            [FR / "obama.jpg", FR / "obama3.jpg", FR / "biden.jpg", FR / "two_people.jpg"],
            source="news",
        )
        johns = [p for d in sorted(JOHNS.iterdir()) if d.is_dir() for p in sorted(d.iterdir())[1:]]
        ft.ingest(johns, source="news")
    return home


@pytest.fixture
def gallery(gallery_home: Path) -> Iterator[FaceTrace]:
    with FaceTrace.open(Settings(home=gallery_home, workers=1)) as ft:
        yield ft
