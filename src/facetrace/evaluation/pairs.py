"""1:1 verification on labelled pairs (LFW's ``pairs.txt`` or a CSV), the LFW protocol.

Pair files:

- LFW format: ``name i j`` (same person) or ``name1 i name2 j`` (different
  people), images at ``DIR/NAME/NAME_000i.jpg``. The first line may be a header
  of fold counts, ``"10 300"`` (10 folds of 300 same + 300 different pairs, in
  file order) or ``"1 750"``; lines starting with ``#`` are comments.
- CSV with a header ``a,b,same``: paths relative to ``DIR``, ``same`` 1 or 0.

Without a fold header the pairs are split into 10 folds, each with a tenth of
the same-person and of the different-person pairs in file order.

Images where no face is found walk the describer's fallback chain (dlib's CNN
detector by default; the LFW centre geometry only when asked); an image still
without a face makes its comparisons *failed*: distance ``+inf``, never
accepted, so a failed genuine pair counts as an error and a failed impostor
pair as a correct rejection. The report gives the counts.
"""

from __future__ import annotations

import csv
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facetrace.errors import UsageError
from facetrace.evaluation.metrics import (
    best_threshold,
    kfold_accuracy,
    roc_auc,
    roc_points,
    tar_at_far,
)
from facetrace.evaluation.variants import Described, Describer, How

FARS = (1e-2, 1e-3)


@dataclass(frozen=True, slots=True)
class Pair:
    """Two image paths relative to the data folder, whether they show one person, and a fold."""

    a: str
    b: str
    same: bool
    fold: int


def lfw_path(name: str, number: str) -> str:
    """``NAME/NAME_000i.jpg`` (4-digit zero-padded)."""
    return f"{name}/{name}_{int(number):04d}.jpg"


def _assign_folds(same: list[bool], folds: int) -> list[int]:
    out = [0] * len(same)
    for label in (True, False):
        idx = [i for i, s in enumerate(same) if s is label]
        for rank, i in enumerate(idx):
            out[i] = rank * folds // max(len(idx), 1)
    return out


def read_pairs(path: Path, folds: int = 10) -> list[Pair]:
    """Read an LFW ``pairs.txt`` or an ``a,b,same`` CSV. Raises UsageError if malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read pairs file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"pairs file {path} is not UTF-8 text: {exc}") from exc
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise UsageError(f"{path} holds no pairs")
    if lines[0].replace(" ", "").lower().startswith("a,b,same"):
        return _read_csv(path, folds)
    header: tuple[int, int] | None = None
    first = lines[0].split()
    if len(first) == 2 and all(p.isdigit() for p in first):
        header = (int(first[0]), int(first[1]))
        lines = lines[1:]
    pairs: list[tuple[str, str, bool]] = []
    for n, line in enumerate(lines, 1):
        parts = line.split()
        try:
            if len(parts) == 3:
                pairs.append((lfw_path(parts[0], parts[1]), lfw_path(parts[0], parts[2]), True))
            elif len(parts) == 4:
                pairs.append((lfw_path(parts[0], parts[1]), lfw_path(parts[2], parts[3]), False))
            else:
                raise ValueError
        except ValueError:
            raise UsageError(f"{path}: pair line {n} is not 'name i j' or 'n1 i n2 j'") from None
    if header is not None and header[0] > 1 and header[0] * 2 * header[1] == len(pairs):
        fold_of = [i // (2 * header[1]) for i in range(len(pairs))]
    else:
        fold_of = _assign_folds([p[2] for p in pairs], folds)
    return [Pair(a, b, s, f) for (a, b, s), f in zip(pairs, fold_of, strict=True)]


def _read_csv(path: Path, folds: int) -> list[Pair]:
    rows: list[tuple[str, str, bool]] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(line for line in fh if not line.startswith("#"))
        for n, row in enumerate(reader, 2):
            try:
                same = row["same"].strip()
                if same not in ("0", "1"):
                    raise ValueError
                rows.append((row["a"].strip(), row["b"].strip(), same == "1"))
            except (KeyError, ValueError, AttributeError):
                raise UsageError(f"{path}: line {n} needs a,b,same with same = 1 or 0") from None
    if not rows:
        raise UsageError(f"{path} holds no pairs")
    fold_of = _assign_folds([r[2] for r in rows], min(folds, max(2, len(rows) // 2)))
    return [Pair(a, b, s, f) for (a, b, s), f in zip(rows, fold_of, strict=True)]


@dataclass(frozen=True, slots=True)
class PairsReport:
    """Results of one verification run. Rates are fractions in [0, 1]."""

    variant: str
    pairs: int
    genuine: int
    impostor: int
    accuracy: float
    accuracy_std: float
    fold_accuracies: tuple[float, ...]
    threshold: float
    auc: float
    tar_at_far: dict[str, float]
    images: int
    faces_by: dict[str, int]
    failed_pairs: int
    seconds: float
    ms_per_image: float
    distances: np.ndarray = field(repr=False)
    same: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "pairs": self.pairs,
            "genuine": self.genuine,
            "impostor": self.impostor,
            "folds": len(self.fold_accuracies),
            "accuracy": round(self.accuracy, 6),
            "accuracy_std": round(self.accuracy_std, 6),
            "accuracy_standard_error": round(
                self.accuracy_std / math.sqrt(max(len(self.fold_accuracies), 1)), 6
            ),
            "fold_accuracies": [round(a, 6) for a in self.fold_accuracies],
            "threshold": round(self.threshold, 6),
            "roc_auc": round(self.auc, 6),
            "tar_at_far": {k: round(v, 6) for k, v in self.tar_at_far.items()},
            "images": self.images,
            "faces_by": self.faces_by,
            "no_face_images": self.images - self.faces_by.get(How.DETECTED.value, 0),
            "failed_pairs": self.failed_pairs,
            "seconds": round(self.seconds, 3),
            "ms_per_image": round(self.ms_per_image, 2),
        }


def describe_all(describer: Describer, images_dir: Path, keys: list[str]) -> dict[str, Described]:
    """Describe each image once (``keys`` relative to ``images_dir``), flushing the cache."""
    out: dict[str, Described] = {}
    try:
        for key in keys:
            if key not in out:
                out[key] = describer.describe(images_dir / key, key)
    finally:
        describer.flush()
    return out


def evaluate_pairs(
    pairs: list[Pair], images_dir: Path, describer: Describer, *, variant: str = ""
) -> PairsReport:
    """Run the verification protocol; see the module docstring for failed images."""
    if not pairs:
        raise UsageError("no pairs to evaluate")
    start = time.perf_counter()
    before = describer.seconds
    keys = sorted({p.a for p in pairs} | {p.b for p in pairs})
    described = describe_all(describer, images_dir, keys)
    distances = np.empty(len(pairs), dtype=np.float64)
    for i, p in enumerate(pairs):
        ea, eb = described[p.a].embedding, described[p.b].embedding
        distances[i] = math.inf if ea is None or eb is None else float(np.linalg.norm(ea - eb))
    same = np.array([p.same for p in pairs], dtype=bool)
    if same.all() or not same.any():
        raise UsageError("the pairs need both same-person and different-person pairs")
    folds = np.array([p.fold for p in pairs])
    acc = kfold_accuracy(distances, same, folds)
    tars = {f"{far:g}": tar_at_far(distances, same, far)[0] for far in FARS}
    counts = Counter(d.how.value for d in described.values())
    computed = describer.seconds - before
    return PairsReport(
        variant=variant or describer.key,
        pairs=len(pairs),
        genuine=int(same.sum()),
        impostor=int((~same).sum()),
        accuracy=acc.mean,
        accuracy_std=acc.std,
        fold_accuracies=acc.folds,
        threshold=best_threshold(distances, same),
        auc=roc_auc(distances, same),
        tar_at_far=tars,
        images=len(keys),
        faces_by={h.value: counts.get(h.value, 0) for h in How},
        failed_pairs=int(np.isinf(distances).sum()),
        seconds=time.perf_counter() - start,
        ms_per_image=1000.0 * computed / len(keys),
        distances=distances,
        same=same,
    )


def roc_curve(report: PairsReport) -> tuple[np.ndarray, np.ndarray]:
    """``(far, tar)`` of a report, FAR ascending."""
    return roc_points(report.distances, report.same)
