"""The CI subset of the fault-injection campaign: one seeded SIGKILL in each of ingest,
takedown, opt-out, retention, index rebuild and index migration, then a restart, the
doctor and a re-run; nothing acknowledged lost, nothing deleted back. The full campaign
is ``scripts/fault_campaign.py`` (figures in README)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from scripts.fault_campaign import fixture_photos

from facetrace.evaluation.campaign import COMMANDS, Backend, campaign
from facetrace.vision.analyzer import FaceAnalyzer

BACKENDS = [pytest.param(Backend(), id="faiss")]
if os.environ.get("FACETRACE_TEST_MILVUS_URI"):
    BACKENDS.append(pytest.param(Backend(os.environ["FACETRACE_TEST_MILVUS_URI"]), id="milvus"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_seeded_kills_lose_nothing(
    tmp_path: Path, analyzer: FaceAnalyzer, backend: Backend
) -> None:
    report = campaign(len(COMMANDS), 7, tmp_path, fixture_photos(), analyzer, backend=backend)
    assert report["failures"] == [] and report["failed"] == 0
    assert report["by_command"] == dict.fromkeys(COMMANDS, 1)
    assert report["killed"] == len(COMMANDS)  # every run died before it finished
    assert all(n > 5 for n in report["crash_points"].values())
