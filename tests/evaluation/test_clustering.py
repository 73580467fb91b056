"""Clustering scores: the arithmetic on a case worked by hand, and `eval cluster` on
the Johns (every John one cluster, nobody mixed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facetrace.cli.main import app
from facetrace.evaluation.clustering import score_clusters
from tests.conftest import JOHNS


def test_bcubed_and_pairwise_by_hand() -> None:
    # truth: a a a b b ; clusters: {a a} {a b b}
    s = score_clusters("x", np.array(list("aaabb")), np.array([0, 0, 1, 1, 1]))
    # BCubed precision per face: 1, 1, 1/3, 2/3, 2/3; recall: 2/3, 2/3, 1/3, 1, 1
    assert s.bcubed_precision == pytest.approx((1 + 1 + 1 / 3 + 2 / 3 + 2 / 3) / 5)
    assert s.bcubed_recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5)
    # same-cluster pairs: 1 + 3 = 4, of which 1 (a,a) + 1 (b,b) are one person
    assert s.pairwise_precision == pytest.approx(2 / 4)
    # same-person pairs: 3 (a) + 1 (b) = 4, of which 2 share a cluster
    assert s.pairwise_recall == pytest.approx(2 / 4)
    assert (s.clusters, s.identities, s.singletons) == (2, 2, 0)


def test_eval_cluster_puts_every_john_in_one_cluster(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["--home", str(tmp_path), "eval", "cluster", "--images", str(JOHNS), "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {r["method"]: r for r in data["results"]}
    ours = rows["facetrace"]
    people = len([d for d in JOHNS.iterdir() if d.is_dir()])
    assert ours["identities"] == ours["clusters"] == people
    assert ours["bcubed_precision"] == ours["bcubed_recall"] == 1.0
    assert any(m.startswith("chinese-whispers@") for m in rows)
    assert any(m.startswith("dbscan-min3@") for m in rows)
