"""Pair file parsing: LFW pairs.txt (with and without a fold header) and CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetrace.errors import UsageError
from facetrace.evaluation.pairs import read_pairs


def test_lfw_format_with_fold_header(tmp_path: Path) -> None:
    lines = ["2 1", "Al_Gore\t1\t2", "Al_Gore 1 Bo_Derek 3", "Cy 2 10", "Cy 1 Di 4"]
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(lines) + "\n")
    pairs = read_pairs(path)
    assert [(p.a, p.b, p.same, p.fold) for p in pairs] == [
        ("Al_Gore/Al_Gore_0001.jpg", "Al_Gore/Al_Gore_0002.jpg", True, 0),
        ("Al_Gore/Al_Gore_0001.jpg", "Bo_Derek/Bo_Derek_0003.jpg", False, 0),
        ("Cy/Cy_0002.jpg", "Cy/Cy_0010.jpg", True, 1),
        ("Cy/Cy_0001.jpg", "Di/Di_0004.jpg", False, 1),
    ]


def test_lfw_format_without_header_gets_ten_stratified_folds(tmp_path: Path) -> None:
    rows = [f"P{i} 1 2" for i in range(20)] + [f"P{i} 1 Q{i} 1" for i in range(20)]
    path = tmp_path / "pairs.txt"
    path.write_text("# comment\n" + "\n".join(rows))
    pairs = read_pairs(path)
    assert len({p.fold for p in pairs}) == 10
    for fold in range(10):
        members = [p for p in pairs if p.fold == fold]
        assert sum(p.same for p in members) == 2 and len(members) == 4


def test_csv_format(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("a,b,same\nx/1.jpg,x/2.jpg,1\nx/1.jpg,y/1.jpg,0\n")
    pairs = read_pairs(path)
    assert [(p.a, p.b, p.same) for p in pairs] == [
        ("x/1.jpg", "x/2.jpg", True),
        ("x/1.jpg", "y/1.jpg", False),
    ]


def test_malformed_lines_are_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("A 1 2\nB 1 C\n")
    with pytest.raises(UsageError, match="line 2"):
        read_pairs(path)
    csv = tmp_path / "p.csv"
    csv.write_text("a,b,same\nx,y,maybe\n")
    with pytest.raises(UsageError, match="same = 1 or 0"):
        read_pairs(csv)
