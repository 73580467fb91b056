"""Governance fixtures: one shared face analyzer (model converted once), fresh galleries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from facetrace import FaceTrace, Settings
from facetrace.governance.access import Actor, Role
from facetrace.ingest.tasks import PhotoTask
from facetrace.vision.analyzer import FaceAnalyzer

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

ADMIN = Actor(name="local:test", role=Role.ADMIN, user_id=None)
"""The bootstrap admin (no user exists yet)."""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def open_engine(
    tmp_path: Path, analyzer: FaceAnalyzer, clock: Clock, database_url: str | None
) -> Iterator[Callable[..., FaceTrace]]:
    """Factory opening a gallery in ``tmp_path/home`` with the shared analyzer and clock,
    its metadata in SQLite and (as a second run of each test) in PostgreSQL."""
    opened: list[FaceTrace] = []

    def make(**overrides: object) -> FaceTrace:
        values: dict[str, object] = {
            "match_threshold": 0.6,
            "database_url": database_url,
            **overrides,
        }
        settings = Settings(home=tmp_path / "home", workers=1, **values)  # type: ignore[arg-type]
        ft = FaceTrace.open(settings, analyzer=analyzer, clock=clock)
        opened.append(ft)
        return ft

    yield make
    for ft in opened:
        ft.close()


def task(path: Path, origin: str, *, page_url: str | None = None, at: datetime = T0) -> PhotoTask:
    """A task carrying the photo's bytes, found at ``origin``."""
    return PhotoTask(
        key=origin, origin=origin, page_url=page_url, collected_at=at, data=path.read_bytes()
    )
