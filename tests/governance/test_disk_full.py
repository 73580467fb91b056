"""A disk that fills up mid-ingest or mid-takedown: a clear error, a consistent gallery,
and the same command finishes once space is freed. The gallery lives on a small tmpfs
mounted for the test (root, as in CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrace import FaceTrace, Settings
from facetrace.errors import StorageFullError
from facetrace.governance.doctor import Check, examine
from facetrace.governance.takedown import takedown_source
from facetrace.vision.analyzer import FaceAnalyzer
from tests.conftest import JOHNS
from tests.governance.conftest import ADMIN


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path, leave_kb: int) -> Path:
    """Fill the disk up to ``leave_kb`` KiB free with a ballast file; returns it."""
    ballast = mount / f"ballast{len(list(mount.glob('ballast*')))}"
    free = shutil.disk_usage(mount).free
    with open(ballast, "wb") as fh:
        fh.write(b"\0" * max(free - leave_kb * 1024, 0))
    return ballast


def _problems(ft: FaceTrace) -> set[Check]:
    return {f.check for f in examine(ft, ADMIN).findings if f.count}


def test_ingest_and_takedown_on_a_full_disk(small_disk: Path, analyzer: FaceAnalyzer) -> None:
    settings = Settings(home=small_disk / "home", workers=1, match_threshold=0.6)
    folders = [JOHNS / "John_Salley", JOHNS / "John_Simm"]
    photos = sum(len(list(f.glob("*.jpg"))) for f in folders)
    with FaceTrace.open(settings, analyzer=analyzer) as ft:
        ft.add_source("s", lawful_basis="t")
        ft.add_source("gone", lawful_basis="t")
        ft.ingest([JOHNS / "John_Savage"], source="gone")
        ballast = _fill(small_disk, leave_kb=120)
        with pytest.raises(StorageFullError, match="jobs resume 2"):
            ft.ingest(folders, source="s")
        stored = ft.stats().photos
    # Reopened with space still short: what was stored is there and searchable.
    with FaceTrace.open(settings, analyzer=analyzer) as ft:
        assert ft.stats().photos == stored and ft.stats().faces == ft.stats().indexed
        os.remove(ballast)
        assert _problems(ft) <= {Check.UNFINISHED_JOBS}  # only the interrupted job
        summary = ft.resume_job(2)
        assert not summary.errors
        assert ft.stats().photos >= photos  # + the taken-down source's, still there
        assert _problems(ft) == set()
        # A takedown on a full disk: refused cleanly or done; either way consistent.
        ballast = _fill(small_disk, leave_kb=8)
        with pytest.raises(StorageFullError, match="run the same command again"):
            takedown_source(ft, ADMIN, "gone")
    os.remove(ballast)  # (the doctor's own audit entry needs a little space)
    with FaceTrace.open(settings, analyzer=analyzer) as ft:
        assert _problems(ft) <= {Check.TAKEDOWN_LEFTOVERS}
        takedown_source(ft, ADMIN, "gone")  # run again once there is space
        assert _problems(ft) == set()
        source = ft.store.get_source("gone")
        assert source is not None and source.status == "blocked"
        result = ft.search(
            sorted((JOHNS / "John_Savage").glob("*.jpg"))[0], case_id="C", reason="r"
        )
        origins = {p.origin for f in result.faces for m in f.matches for p in m.provenance}
        assert not any("John_Savage" in o for o in origins)
