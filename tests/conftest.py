"""Shared fixtures: real photos from tests/fixtures, real SQLite files, a real index."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrace import FaceTrace, Settings
from facetrace.vision.analyzer import FaceAnalyzer, build_analyzer

FIXTURES = Path(__file__).parent / "fixtures"
FR = FIXTURES / "face_recognition"
DLIB = FIXTURES / "dlib_faces"
JOHNS = FIXTURES / "johns"


PG_URL = os.environ.get("FACETRACE_TEST_DATABASE_URL")
"""A PostgreSQL server's database for tests (scripts/pg_server.py sets it)."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests that take ``database_url`` run on SQLite and on PostgreSQL, except those
    marked ``sqlite_only``."""
    if "database_url" in metafunc.fixturenames:
        kinds = ["sqlite"]
        if metafunc.definition.get_closest_marker("sqlite_only") is None:
            kinds.append("postgresql")
        metafunc.parametrize("database_url", kinds, indirect=True)


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (the gallery's own SQLite file) or the URL of a new, empty PostgreSQL
    database, dropped afterwards."""
    if request.param == "sqlite":
        yield None
        return
    if not PG_URL:
        if os.environ.get("FACETRACE_REQUIRE_POSTGRES"):
            pytest.fail("FACETRACE_TEST_DATABASE_URL is not set (scripts/pg_server.py run)")
        pytest.skip("needs PostgreSQL: run through scripts/pg_server.py (scripts/test.sh does)")
    with new_pg_database(PG_URL) as url:
        yield url


@contextlib.contextmanager
def new_pg_database(server_url: str) -> Iterator[str]:
    """The URL of a new, empty database on the PostgreSQL server, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    """Settings for a fresh gallery in a temporary folder (metadata in SQLite, and in
    PostgreSQL as a second run)."""
    return Settings(home=tmp_path / "home", workers=1, database_url=database_url)


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
