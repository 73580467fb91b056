"""Search and verify carry calibrated false-match rates (dlib model, shipped table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrace import FaceTrace, Settings
from facetrace.config import FmrScope
from tests.conftest import FR


def test_search_matches_carry_fmr_and_expected_false_matches(gallery: FaceTrace) -> None:
    assert gallery.calibration is not None
    result = gallery.search(FR / "obama2.jpg", case_id="c1", reason="calibration test")
    matches = result.faces[0].matches
    assert len(matches) >= 2
    for m in matches:
        assert m.false_match_rate is not None
        assert m.worst_group_false_match_rate is not None
        assert m.worst_group_false_match_rate >= m.false_match_rate
        assert m.false_match_rate == pytest.approx(gallery.calibration.false_match_rate(m.distance))
        assert m.expected_false_matches == pytest.approx(m.false_match_rate * result.gallery_size)
        assert m.to_dict()["false_match_rate"] == m.false_match_rate
    # nearer matches are rarer among strangers
    rates = [m.false_match_rate for m in matches]
    assert rates == sorted(rates)
    assert rates[0] < 1e-3 < rates[-1]  # another Obama photo vs the Johns and Biden


def test_verify_reports_fmr_and_uses_the_calibrated_threshold(gallery: FaceTrace) -> None:
    same = gallery.verify(FR / "obama.jpg", FR / "obama2.jpg")
    diff = gallery.verify(FR / "obama.jpg", FR / "biden.jpg")
    assert same.same_person and not diff.same_person
    assert same.false_match_rate is not None and diff.false_match_rate is not None
    assert same.false_match_rate < 1e-3 < diff.false_match_rate
    cal = gallery.calibration
    assert cal is not None and cal.worst_group is not None
    # The default holds the worst-measured demographic group to the target FMR, which
    # puts the overall rate far below it.
    target = gallery.settings.match_fmr
    assert same.threshold == pytest.approx(cal.worst_group.threshold_at(target))
    assert cal.worst_group.false_match_rate(same.threshold) == pytest.approx(target, rel=0.05)
    assert cal.false_match_rate(same.threshold) < target / 10
    assert same.worst_group_false_match_rate is not None
    assert same.false_match_rate <= same.worst_group_false_match_rate
    assert same.to_dict()["worst_group_false_match_rate"] == same.worst_group_false_match_rate


def test_overall_scope_sets_the_threshold_on_all_impostor_pairs(gallery_home: Path) -> None:
    with FaceTrace.open(
        Settings(home=gallery_home, workers=1, match_fmr_scope=FmrScope.OVERALL)
    ) as ft:
        cal = ft.calibration
        assert cal is not None
        result = ft.verify(FR / "obama.jpg", FR / "obama3.jpg")
        assert result.threshold == pytest.approx(cal.threshold_at(ft.settings.match_fmr))
        assert cal.false_match_rate(result.threshold) == pytest.approx(
            ft.settings.match_fmr, rel=0.05
        )


def test_explicit_threshold_overrides_the_fmr(gallery_home: Path) -> None:
    with FaceTrace.open(Settings(home=gallery_home, workers=1, match_threshold=0.1)) as ft:
        result = ft.verify(FR / "obama.jpg", FR / "obama2.jpg")
        assert result.threshold == 0.1 and not result.same_person
        assert result.false_match_rate is not None
