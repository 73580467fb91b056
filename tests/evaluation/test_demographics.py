"""Error rates by demographic group: labels, pair sampling, intervals, per-group
threshold arithmetic (synthetic descriptors with known distances), and the CLI on
real photos."""

from __future__ import annotations

import csv
import json
import math
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from facetrace.cli.main import app
from facetrace.errors import ConfigError, UsageError
from facetrace.evaluation.calibration import Calibration, build_calibration, load_calibration
from facetrace.evaluation.demographics import (
    UNKNOWN,
    Rate,
    Verdict,
    evaluate_demographics,
    impostor_indices,
    kth_threshold,
    read_labels,
    worst_group_curve,
)
from tests.conftest import DLIB, FIXTURES, FR, JOHNS


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_labels_read_groups_missing_values_and_age_bands(tmp_path: Path) -> None:
    rows = [
        {"image": f"p{n}.jpg", "identity": f"id{n // 2}", "sex": s, "age": a}
        for n, (s, a) in enumerate(
            zip(
                "FMFMFMFMFMFMFM",
                [
                    "18",
                    "24",
                    "31",
                    "NA",
                    "47",
                    "55",
                    "62",
                    "71",
                    "25",
                    "33",
                    "41",
                    "58",
                    "66",
                    "90",
                ],
                strict=True,
            )
        )
    ]
    rows[3]["sex"] = ""
    labels = read_labels(write_csv(tmp_path / "l.csv", rows))
    assert labels.has_identity and labels.identities[:3] == ("id0", "id0", "id1")
    assert labels.columns["sex"][3] == UNKNOWN
    assert labels.columns["age"][:5] == ("00-19", "20-29", "30-39", UNKNOWN, "40-49")
    assert labels.columns["age"][-1] == "70+"
    only = read_labels(tmp_path / "l.csv", ["sex"])
    assert list(only.columns) == ["sex"]
    with pytest.raises(UsageError, match="no group column race"):
        read_labels(tmp_path / "l.csv", ["race"])
    # Without an identity column every image is its own person.
    no_id = write_csv(
        tmp_path / "n.csv", [{"image": "a.jpg", "g": "x"}, {"image": "b.jpg", "g": "y"}]
    )
    assert read_labels(no_id).identities == ("a.jpg", "b.jpg")
    dup = write_csv(
        tmp_path / "d.csv", [{"image": "a.jpg", "g": "x"}, {"image": "a.jpg", "g": "y"}]
    )
    with pytest.raises(UsageError, match="more than once"):
        read_labels(dup)
    with pytest.raises(UsageError, match="'image' column"):
        read_labels(write_csv(tmp_path / "x.csv", [{"file": "a.jpg", "g": "x"}]))


def test_impostor_pairs_never_join_one_identity_exhaustive_or_sampled() -> None:
    ids = [f"p{n % 7}" for n in range(60)]
    found = np.ones(60, dtype=bool)
    found[[3, 17]] = False
    i, j, population, sampled = impostor_indices(ids, found, max_pairs=10**6)
    assert not sampled
    expected = {
        (a, b) for a, b in combinations(range(60), 2) if ids[a] != ids[b] and found[a] and found[b]
    }
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected
    assert population == len(expected)

    si, sj, spop, sampled = impostor_indices(ids, found, max_pairs=500, seed=3)
    assert sampled and spop == population and si.size == sj.size == 500
    ids_arr = np.asarray(ids)
    assert not (ids_arr[si] == ids_arr[sj]).any()
    assert found[si].all() and found[sj].all()
    again = impostor_indices(ids, found, max_pairs=500, seed=3)
    assert np.array_equal(again[0], si) and np.array_equal(again[1], sj)


def test_wilson_interval_and_verdicts() -> None:
    r = Rate(10, 100)
    lo, hi = r.ci95
    assert r.value == 0.1
    assert lo == pytest.approx(0.0552, abs=1e-4) and hi == pytest.approx(0.1744, abs=1e-4)
    assert Rate(0, 0).value is None and Rate(0, 0).to_dict()["ci95"] is None
    zero = Rate(0, 30_000)  # rule of three: upper bound about 3 / n
    assert zero.ci95[1] == pytest.approx(3 / 30_000, rel=0.35)


def test_kth_threshold_is_the_largest_allowing_the_rate() -> None:
    d = np.arange(1, 1001, dtype=np.float64) / 1000.0  # 0.001 .. 1.000
    t, resolved = kth_threshold(d, 0.01)
    assert resolved and t == pytest.approx(0.011)  # 10 distances below it: FMR 1%
    assert np.mean(d < t) <= 0.01 and np.mean(d <= t) > 0.01
    t, resolved = kth_threshold(d, 1e-4)  # below 1/n: nothing may match
    assert not resolved and t == pytest.approx(0.001) and np.mean(d < t) == 0
    assert kth_threshold(np.array([]), 0.1) == (None, False)


def synthetic_set(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    """Two groups on separate lines of a 3-D space, 2 photos per person: group A's
    people sit 0.1 apart (its impostors are close), group B's 1.0 apart."""
    rows, emb = [], []
    for group, step, base in (("A", 0.1, 0.0), ("B", 1.0, 50.0)):
        for person in range(10):
            for photo in range(2):
                rows.append(
                    {
                        "image": f"{group}{person}_{photo}.jpg",
                        "identity": f"{group}{person}",
                        "grp": group,
                    }
                )
                emb.append(np.array([base + person * step, 0.01 * photo, 0.0], dtype=np.float32))
    return write_csv(tmp_path / "syn.csv", rows), emb


def test_group_rates_match_a_brute_force_count(tmp_path: Path) -> None:
    path, emb = synthetic_set(tmp_path)
    labels = read_labels(path)
    emb[5] = None  # type: ignore[call-overload]  # one face not found (group A)
    report, pairs = evaluate_demographics(labels, emb, threshold=0.35, target_fmr=0.06)
    (grouping,) = report.groupings
    by = {g.name: g for g in grouping.groups}
    # Brute force over the same pairs.
    imp = {"A": [0, 0], "B": [0, 0]}
    gen = {"A": [0, 0], "B": [0, 0]}
    for a, b in combinations(range(len(emb)), 2):
        ga, gb = labels.columns["grp"][a], labels.columns["grp"][b]
        if emb[a] is None or emb[b] is None:
            continue  # a face not found: in no impostor pair, nor in the both-found FNMR
        d = float(np.linalg.norm(emb[a] - emb[b]))
        if labels.identities[a] == labels.identities[b]:
            gen[ga][0] += d >= 0.35
            gen[ga][1] += 1
        elif ga == gb:
            imp[ga][0] += d < 0.35
            imp[ga][1] += 1
    for g in ("A", "B"):
        assert (by[g].fmr_same.errors, by[g].fmr_same.trials) == tuple(imp[g])
        assert (by[g].fnmr.errors, by[g].fnmr.trials) == tuple(gen[g])
    assert by["A"].fmr_same.errors > 0 and by["B"].fmr_same.errors == 0
    assert by["A"].not_detected.errors == 1 and by["B"].not_detected.errors == 0
    assert by["A"].fnmr_with_failures.trials == by["A"].fnmr.trials + 1
    assert by["A"].fmr_cross.trials == by["B"].fmr_cross.trials == 19 * 20
    # The threshold A needs for FMR 6%: the k-th smallest of its same-group impostors.
    a_imp = np.sort(
        pairs.imp_distance[np.isin(pairs.imp_i, range(20)) & np.isin(pairs.imp_j, range(20))]
    )
    k = math.floor(0.06 * a_imp.size) + 1
    assert by["A"].threshold_for_target == pytest.approx(float(a_imp[k - 1]))
    assert by["A"].verdict == Verdict.EXCEEDS
    assert report.worst() is not None and report.worst()[1].name == "A"  # type: ignore[index]
    data = report.to_dict()
    assert data["worst_group"]["group"] == "A"
    assert data["worst_group"]["times_target"] == pytest.approx(
        by["A"].fmr_same.value / 0.06, rel=1e-3
    )
    assert grouping.note.startswith("B had no false match")


def test_worst_group_curve_holds_every_group_to_the_target() -> None:
    rng = np.random.default_rng(0)
    easy = np.sort(rng.uniform(0.3, 1.0, 20_000))
    hard = np.sort(rng.uniform(0.1, 1.0, 20_000))
    overall = build_calibration("m", np.concatenate([easy, hard]), rng.uniform(0, 0.4, 500))
    curve = worst_group_curve(overall, {"easy": easy, "hard": hard}, min_pairs=1000)
    for d in (0.2, 0.35, 0.5):
        want = max(np.mean(easy <= d), np.mean(hard <= d))
        assert curve.false_match_rate(d) == pytest.approx(want, rel=0.03)
    t = curve.threshold_at(1e-2)
    assert np.mean(hard < t) == pytest.approx(1e-2, rel=0.1)
    assert t < overall.threshold_at(1e-2)
    table = overall.with_worst_group(curve)
    back = Calibration.from_dict(json.loads(json.dumps(table.to_dict())))
    assert back.worst_group is not None
    assert back.worst_group.threshold_at(1e-2) == pytest.approx(t, rel=1e-3)
    with pytest.raises(ConfigError, match="below what"):
        back.worst_group.threshold_at(1e-7)
    with pytest.raises(UsageError, match="at least two groups"):
        worst_group_curve(overall, {"easy": easy, "hard": hard[:10]}, min_pairs=1000)


runner = CliRunner()


def test_cli_reports_groups_on_real_photos_and_stores_a_curve(tmp_path: Path) -> None:
    rows = []
    for person in sorted(p for p in JOHNS.iterdir() if p.is_dir()):
        cohort = "a" if person.name in ("John_Salley", "John_Savage") else "b"
        for photo in sorted(person.glob("*.jpg")):
            rows.append(
                {
                    "image": photo.relative_to(FIXTURES).as_posix(),
                    "identity": person.name,
                    "cohort": cohort,
                }
            )
    for name, who in (("obama.jpg", "obama"), ("obama2.jpg", "obama"), ("biden.jpg", "biden")):
        rows.append(
            {"image": (FR / name).relative_to(FIXTURES).as_posix(), "identity": who, "cohort": "c"}
        )
    rows.append(
        {
            "image": (DLIB / "dogs.jpg").relative_to(FIXTURES).as_posix(),
            "identity": "dogs",
            "cohort": "c",
        }
    )
    labels = write_csv(tmp_path / "labels.csv", rows)
    table = tmp_path / "table.json"
    load_calibration("dlib-resnet-v1").save(table)  # type: ignore[union-attr]
    plot = tmp_path / "groups.png"

    def demographics(*extra: str) -> Result:
        return runner.invoke(
            app,
            [
                *("--home", str(tmp_path / "home"), "eval", "demographics"),
                *("--labels", str(labels), "--images", str(FIXTURES), *extra),
            ],
        )

    result = demographics(
        "--fmr", "0.1", "--plot", str(plot), "--calibrate", "cohort", "--out", str(table), "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["images"] == len(rows) and data["target_fmr"] == 0.1
    (cohort,) = data["groupings"]
    by = {g["group"]: g for g in cohort["groups"]}
    assert by["c"]["not_detected"]["errors"] == 1  # the dogs
    n_a = sum(1 for r in rows if r["cohort"] == "a")
    assert by["a"]["fmr_same_group"]["pairs"] == (n_a // 2) ** 2  # two Johns, same counts
    assert by["a"]["fnmr"]["pairs"] == 2 * math.comb(n_a // 2, 2)
    assert by["c"]["fnmr"]["pairs"] == 1  # obama x obama2
    assert sorted(data["calibration"]["groups"]) == ["a", "b"]
    stored = Calibration.load(table)
    assert stored.worst_group is not None
    assert stored.worst_group.extra["grouping"] == "cohort"
    assert data["calibration"]["worst_group_threshold_at_target"] == pytest.approx(
        stored.worst_group.threshold_at(0.1), abs=1e-4
    )
    with Image.open(plot) as im:
        assert im.format == "PNG" and im.height > 100
    text = demographics("--threshold", "0.5")
    assert text.exit_code == 0, text.output
    assert "cohort" in text.stdout and "worst group" in text.stdout
    both = demographics("--threshold", "0.5", "--fmr", "0.1")
    assert both.exit_code == 2 and "not both" in both.output


def test_no_ratio_is_claimed_when_no_group_had_a_false_match(tmp_path: Path) -> None:
    path, emb = synthetic_set(tmp_path)
    report, _ = evaluate_demographics(read_labels(path), emb, threshold=0.05, target_fmr=0.1)
    (grouping,) = report.groupings
    assert grouping.ratio is None and grouping.highest is None
    assert grouping.note == "none of the 2 compared groups had a false match"
