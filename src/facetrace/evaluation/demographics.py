"""Error rates by demographic group, on labelled faces (NISTIR 8280's questions).

Input: a CSV with an ``image`` column (a path relative to the images folder),
optionally ``identity``, and any number of *group columns* (``sex``, ``race``,
``age`` ...). Without ``identity`` every image is taken to be a different
person, so only impostor (false-match) rates can be measured.

A *grouping* is one group column, or the combination of two (``sex×race``,
whose groups are cells such as ``F×Black``). For each group of each grouping,
at the operating ``threshold`` (a pair matches when its distance is ``<
threshold``, as search and verify decide):

- **FMR, same group**: impostor pairs (different identities) with both faces
  in the group, as NIST's demographic study draws them; **FMR, cross group**:
  pairs with exactly one face in the group; and the group-by-group matrix;
- **FNMR**: genuine pairs (same identity, both faces in the group) whose
  distance is ``>= threshold``, over pairs where both faces were found, and
  again counting a face that was not found as a miss;
- **failure to detect**: images of the group in which no face was found;
- the **threshold the group would need** for its same-group FMR to come down
  to the target FMR, and to the overall FMR measured on this data;
- a **verdict** against the target: the group's 95% interval lies below it
  (``meets``), above it (``exceeds``), or across it (``too few pairs to
  tell``: more pairs would decide).

Per grouping, the ratio of the highest to the lowest same-group FMR is taken
over the groups whose interval is narrow enough to say something (at least
:data:`~facetrace.evaluation.calibration.MIN_GROUP_ERRORS` false matches, or
enough pairs that the target would produce that many); ``unknown`` groups
(blank, ``NA``) are reported but take no part in ratios or in the worst group.

Pairs: all impostor pairs between images with a face, unless there are more
than ``max_pairs``; then a uniform random sample of that many (seeded, with
replacement, never a same-identity pair). Intervals are 95% Wilson score
intervals that treat pairs as independent; pairs that share a face are not,
so the true uncertainty is somewhat larger, most of all for small groups.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facetrace.errors import UsageError
from facetrace.evaluation.calibration import MIN_GROUP_ERRORS, Calibration
from facetrace.evaluation.metrics import threshold_in_sorted, wilson_interval

UNKNOWN = "unknown"
MISSING = frozenset({"", "na", "n/a", "nan", "none", "unknown", "?"})
AGE_BANDS = ((0, 20), (20, 30), (30, 40), (40, 50), (50, 60), (60, 70), (70, 1000))
COMBINE = "×"


class Verdict(StrEnum):
    """How a group's same-group FMR stands against the target (its 95% interval)."""

    MEETS = "meets target"
    EXCEEDS = "exceeds target"
    UNDECIDED = "too few pairs to tell"


@dataclass(frozen=True, slots=True)
class LabelSet:
    """Labelled images: ``images[i]`` has ``identities[i]`` and ``columns[c][i]``."""

    images: tuple[str, ...]
    identities: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]
    has_identity: bool


def _band(value: float) -> str:
    for lo, hi in AGE_BANDS:
        if lo <= value < hi:
            return f"{lo}+" if hi >= 1000 else f"{lo:02d}-{hi - 1}"
    return UNKNOWN


def _normalise(values: list[str]) -> list[str]:
    """Blank and NA-like values become ``unknown``; a numeric column with more than
    twelve distinct values (an age) is cut into the bands of :data:`AGE_BANDS`."""
    clean = [UNKNOWN if v.strip().lower() in MISSING else v.strip() for v in values]
    known = {v for v in clean if v != UNKNOWN}
    try:
        numbers = {v: float(v) for v in known}
    except ValueError:
        return clean
    if len(known) <= 12:
        return clean
    return [UNKNOWN if v == UNKNOWN else _band(numbers[v]) for v in clean]


def read_labels(path: Path, groups: Sequence[str] | None = None) -> LabelSet:
    """Read a labels CSV; ``groups`` picks the group columns (default: all but
    ``image`` and ``identity``). Raises UsageError when malformed."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(line for line in fh if not line.startswith("#"))
            header = [h.strip() for h in (reader.fieldnames or [])]
            # A row longer than the header puts its extra cells under the key None.
            rows = [
                {k.strip(): v if isinstance(v, str) else "" for k, v in row.items() if k}
                for row in reader
            ]
    except OSError as exc:
        raise UsageError(f"cannot read labels {path}: {exc.strerror or exc}") from exc
    except (csv.Error, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not a readable CSV: {exc}") from exc
    if "image" not in header:
        raise UsageError(f"{path} needs an 'image' column (got {', '.join(header) or 'none'})")
    available = [h for h in header if h not in ("image", "identity")]
    chosen = list(groups) if groups else available
    unknown = [g for g in chosen if g not in available]
    if unknown:
        raise UsageError(
            f"{path} has no group column {', '.join(unknown)}; it has {', '.join(available)}"
        )
    if not chosen:
        raise UsageError(f"{path} has no group column besides image and identity")
    images = [r["image"].strip() for r in rows]
    if not images or any(not i for i in images):
        raise UsageError(f"{path}: every row needs an image path")
    if len(set(images)) != len(images):
        raise UsageError(f"{path} lists an image more than once")
    has_identity = "identity" in header
    identities = [r["identity"].strip() for r in rows] if has_identity else images
    if any(not i for i in identities):
        raise UsageError(f"{path}: an 'identity' cell is empty")
    columns = {c: tuple(_normalise([r.get(c, "") for r in rows])) for c in chosen}
    return LabelSet(tuple(images), tuple(identities), columns, has_identity)


@dataclass(frozen=True, slots=True)
class Grouping:
    """One way of splitting the images: ``codes[i]`` indexes ``names`` (``(n,)`` int)."""

    name: str
    names: tuple[str, ...]
    codes: npt.NDArray[np.int64]

    @property
    def known(self) -> npt.NDArray[np.bool_]:
        """``(groups,)``: False for a group with an unknown value in any of its columns."""
        return np.array([UNKNOWN not in n.split(COMBINE) for n in self.names], dtype=bool)


def groupings(labels: LabelSet, combine: bool = True) -> list[Grouping]:
    """One grouping per column and, with ``combine``, one per pair of columns."""
    keys: list[tuple[str, ...]] = [(c,) for c in labels.columns]
    if combine:
        keys += list(combinations(labels.columns, 2))
    out = []
    for cols in keys:
        values = [
            COMBINE.join(parts) for parts in zip(*(labels.columns[c] for c in cols), strict=True)
        ]
        names, codes = np.unique(np.asarray(values), return_inverse=True)
        out.append(Grouping(COMBINE.join(cols), tuple(str(n) for n in names), codes))
    return out


@dataclass(frozen=True, slots=True)
class PairSet:
    """Impostor and genuine pairs of a labelled set, with their distances.

    ``imp_i``, ``imp_j``: ``(p,)`` int64 image indices, ``imp_i < imp_j`` unless
    sampled; ``imp_distance``: ``(p,)`` float32. Impostor pairs join two images
    with a face and different identities. ``gen_*``: every same-identity pair;
    ``gen_distance`` is ``+inf`` where either face was not found.
    """

    imp_i: npt.NDArray[np.int64]
    imp_j: npt.NDArray[np.int64]
    imp_distance: npt.NDArray[np.float32]
    gen_i: npt.NDArray[np.int64]
    gen_j: npt.NDArray[np.int64]
    gen_distance: npt.NDArray[np.float64]
    impostor_population: int
    sampled: bool


def _distances(
    emb: npt.NDArray[np.float32], i: npt.NDArray[np.int64], j: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    out = np.empty(i.size, dtype=np.float32)
    step = 1 << 17
    for s in range(0, i.size, step):
        diff = emb[i[s : s + step]] - emb[j[s : s + step]]
        out[s : s + step] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def impostor_indices(
    identities: Sequence[str],
    found: npt.NDArray[np.bool_],
    max_pairs: int,
    seed: int = 0,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int, bool]:
    """``(i, j, population, sampled)``: impostor pairs among the images with a face.

    All of them when there are at most ``max_pairs``; otherwise ``max_pairs``
    drawn uniformly (with replacement) from them. Never a same-identity pair.
    """
    if max_pairs < 1:
        raise UsageError("max pairs must be at least 1")
    ids = np.unique(np.asarray(identities), return_inverse=True)[1]
    usable = np.flatnonzero(found)
    sizes = np.bincount(ids[usable])
    population = usable.size * (usable.size - 1) // 2 - int((sizes * (sizes - 1) // 2).sum())
    if population <= max_pairs:
        a, b = np.triu_indices(usable.size, 1)
        i, j = usable[a], usable[b]
        keep = ids[i] != ids[j]
        return i[keep].astype(np.int64), j[keep].astype(np.int64), population, False
    rng = np.random.default_rng(seed)
    got_i: list[npt.NDArray[np.int64]] = []
    got_j: list[npt.NDArray[np.int64]] = []
    need = max_pairs
    while need > 0:
        draw = max(need * 2, 1024)
        i = usable[rng.integers(0, usable.size, draw)]
        j = usable[rng.integers(0, usable.size, draw)]
        keep = ids[i] != ids[j]
        got_i.append(i[keep][:need])
        got_j.append(j[keep][:need])
        need -= int(min(keep.sum(), need))
    return np.concatenate(got_i), np.concatenate(got_j), population, True


def genuine_indices(identities: Sequence[str]) -> tuple[npt.NDArray[np.int64], ...]:
    """``(i, j)``: every unordered same-identity pair, ``i < j``."""
    ids = np.unique(np.asarray(identities), return_inverse=True)[1]
    order = np.argsort(ids, kind="stable")
    bounds = np.flatnonzero(np.diff(ids[order])) + 1
    gi: list[npt.NDArray[np.int64]] = []
    gj: list[npt.NDArray[np.int64]] = []
    for members in np.split(order, bounds):
        if members.size > 1:
            a, b = np.triu_indices(members.size, 1)
            gi.append(members[a])
            gj.append(members[b])
    if not gi:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    return np.concatenate(gi).astype(np.int64), np.concatenate(gj).astype(np.int64)


def build_pairs(
    identities: Sequence[str],
    embeddings: Sequence[npt.NDArray[np.float32] | None],
    *,
    max_pairs: int = 20_000_000,
    seed: int = 0,
) -> PairSet:
    """Pairs and distances; ``embeddings[i]`` is None where no face was found."""
    if len(identities) != len(embeddings):
        raise ValueError("one embedding (or None) per identity label")
    found = np.array([e is not None for e in embeddings], dtype=bool)
    if found.sum() < 2:
        raise UsageError("fewer than two images with a face: nothing to compare")
    dim = next(e.shape[0] for e in embeddings if e is not None)
    emb = np.zeros((len(embeddings), dim), dtype=np.float32)
    for n, e in enumerate(embeddings):
        if e is not None:
            emb[n] = e
    i, j, population, sampled = impostor_indices(identities, found, max_pairs, seed)
    gi, gj = genuine_indices(identities)
    gd = _distances(emb, gi, gj).astype(np.float64)
    gd[~(found[gi] & found[gj])] = math.inf
    return PairSet(i, j, _distances(emb, i, j), gi, gj, gd, population, sampled)


@dataclass(frozen=True, slots=True)
class Rate:
    """``errors`` out of ``trials``, with its 95% Wilson interval."""

    errors: int
    trials: int

    @property
    def value(self) -> float | None:
        return self.errors / self.trials if self.trials else None

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson_interval(self.errors, self.trials)

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.ci95
        v = self.value
        return {
            "value": None if v is None else float(f"{v:.6g}"),
            "ci95": [float(f"{lo:.6g}"), float(f"{hi:.6g}")] if self.trials else None,
            "errors": self.errors,
            "pairs": self.trials,
        }


def kth_threshold(sorted_distances: npt.NDArray[Any], rate: float) -> tuple[float | None, bool]:
    """``(t, resolved)``: the largest ``t`` with ``#(d < t) / n <= rate`` (see
    :func:`~facetrace.evaluation.metrics.threshold_at_far`). When ``rate * n < 1``
    no false match at all is allowed: ``t`` is the smallest distance and
    ``resolved`` is False (the data cannot show a rate that low). None when there
    are no pairs.
    """
    n = sorted_distances.size
    if n == 0:
        return None, False
    return threshold_in_sorted(sorted_distances, rate), rate * n >= 1


@dataclass(frozen=True, slots=True)
class GroupStats:
    """One group's figures at the operating threshold."""

    name: str
    known: bool
    images: int
    identities: int
    not_detected: Rate
    fmr_same: Rate
    fmr_cross: Rate
    fnmr: Rate
    fnmr_with_failures: Rate
    threshold_for_target: float | None
    target_resolved: bool
    threshold_for_overall: float | None
    overall_resolved: bool
    verdict: Verdict
    usable: bool
    """Enough false matches or pairs to take part in ratios and the worst group."""

    def to_dict(self) -> dict[str, Any]:
        def t(v: float | None) -> float | None:
            return None if v is None or not math.isfinite(v) else round(v, 4)

        return {
            "group": self.name,
            "known": self.known,
            "images": self.images,
            "identities": self.identities,
            "not_detected": self.not_detected.to_dict(),
            "fmr_same_group": self.fmr_same.to_dict(),
            "fmr_cross_group": self.fmr_cross.to_dict(),
            "fnmr": self.fnmr.to_dict(),
            "fnmr_with_detection_failures": self.fnmr_with_failures.to_dict(),
            "threshold_for_target_fmr": t(self.threshold_for_target),
            "threshold_for_target_resolved": self.target_resolved,
            "threshold_for_overall_fmr": t(self.threshold_for_overall),
            "threshold_for_overall_resolved": self.overall_resolved,
            "verdict": self.verdict,
            "enough_for_comparison": self.usable,
        }


@dataclass(frozen=True, slots=True)
class GroupingReport:
    """A grouping's groups, its FMR matrix and its spread."""

    name: str
    groups: tuple[GroupStats, ...]
    matrix: dict[str, Rate]
    """``"a | b"`` (names sorted) -> FMR of impostor pairs with one face in each."""
    ratio: float | None
    highest: str | None
    lowest: str | None
    note: str

    @property
    def worst(self) -> GroupStats | None:
        usable = [g for g in self.groups if g.usable and g.fmr_same.value is not None]
        return max(usable, key=lambda g: g.fmr_same.value or 0.0) if usable else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "grouping": self.name,
            "groups": [g.to_dict() for g in self.groups],
            "fmr_matrix": {k: v.to_dict() for k, v in self.matrix.items()},
            "max_min_fmr_ratio": None if self.ratio is None else round(self.ratio, 3),
            "highest_fmr_group": self.highest,
            "lowest_fmr_group": self.lowest,
            "note": self.note,
        }


def _verdict(rate: Rate, target: float) -> Verdict:
    lo, hi = rate.ci95
    if rate.trials and hi < target:
        return Verdict.MEETS
    if rate.trials and lo > target:
        return Verdict.EXCEEDS
    return Verdict.UNDECIDED


def evaluate_grouping(
    grouping: Grouping,
    pairs: PairSet,
    found: npt.NDArray[np.bool_],
    identities: Sequence[str],
    *,
    threshold: float,
    target_fmr: float,
    overall_fmr: float,
) -> GroupingReport:
    """Every group's figures (see the module docstring) at ``threshold``."""
    g = len(grouping.names)
    codes = grouping.codes
    a, b = codes[pairs.imp_i], codes[pairs.imp_j]
    hit = pairs.imp_distance < threshold
    same = a == b
    n_same = np.bincount(a[same], minlength=g)
    k_same = np.bincount(a[same & hit], minlength=g)
    cross = ~same
    n_cross = np.bincount(a[cross], minlength=g) + np.bincount(b[cross], minlength=g)
    k_cross = np.bincount(a[cross & hit], minlength=g) + np.bincount(b[cross & hit], minlength=g)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    cell = lo * g + hi
    n_cell = np.bincount(cell, minlength=g * g)
    k_cell = np.bincount(cell[hit], minlength=g * g)
    order = np.lexsort((pairs.imp_distance[same], a[same]))
    sorted_d = pairs.imp_distance[same][order]
    starts = np.concatenate(([0], np.cumsum(n_same)))
    ga = codes[pairs.gen_i]
    gen_same = ga == codes[pairs.gen_j]
    both = np.isfinite(pairs.gen_distance)
    miss = pairs.gen_distance >= threshold
    n_gen = np.bincount(ga[gen_same & both], minlength=g)
    k_gen = np.bincount(ga[gen_same & both & miss], minlength=g)
    n_gen_all = np.bincount(ga[gen_same], minlength=g)
    k_gen_all = np.bincount(ga[gen_same & miss], minlength=g)
    images = np.bincount(codes, minlength=g)
    failed = np.bincount(codes[~found], minlength=g)
    ids = np.asarray(identities)
    known = grouping.known
    stats = []
    for n in range(g):
        rate = Rate(int(k_same[n]), int(n_same[n]))
        group_sorted = sorted_d[starts[n] : starts[n + 1]]
        t_target, r_target = kth_threshold(group_sorted, target_fmr)
        t_overall, r_overall = kth_threshold(group_sorted, overall_fmr)
        usable = bool(known[n]) and (
            rate.errors >= MIN_GROUP_ERRORS or rate.trials * target_fmr >= MIN_GROUP_ERRORS
        )
        stats.append(
            GroupStats(
                name=grouping.names[n],
                known=bool(known[n]),
                images=int(images[n]),
                identities=len(set(ids[codes == n].tolist())),
                not_detected=Rate(int(failed[n]), int(images[n])),
                fmr_same=rate,
                fmr_cross=Rate(int(k_cross[n]), int(n_cross[n])),
                fnmr=Rate(int(k_gen[n]), int(n_gen[n])),
                fnmr_with_failures=Rate(int(k_gen_all[n]), int(n_gen_all[n])),
                threshold_for_target=t_target,
                target_resolved=r_target,
                threshold_for_overall=t_overall,
                overall_resolved=r_overall,
                verdict=_verdict(rate, target_fmr),
                usable=usable,
            )
        )
    matrix = {
        f"{grouping.names[x]} | {grouping.names[y]}": Rate(
            int(k_cell[x * g + y]), int(n_cell[x * g + y])
        )
        for x in range(g)
        for y in range(x, g)
        if n_cell[x * g + y]
    }
    usable_groups = [s for s in stats if s.usable]
    ratio: float | None = None
    highest = lowest = None
    if len(usable_groups) < 2:
        note = "fewer than two groups with enough pairs: no ratio"
    else:
        top = max(usable_groups, key=lambda s: s.fmr_same.value or 0.0)
        bottom = min(usable_groups, key=lambda s: s.fmr_same.value or 0.0)
        highest, lowest = top.name, bottom.name
        if not top.fmr_same.errors:
            highest = lowest = None
            note = f"none of the {len(usable_groups)} compared groups had a false match"
        elif not bottom.fmr_same.errors:
            note = f"{bottom.name} had no false match: the ratio is unbounded on this data"
        else:
            ratio = (top.fmr_same.value or 0.0) / (bottom.fmr_same.value or 1.0)
            note = f"over {len(usable_groups)} groups with enough pairs"
    return GroupingReport(grouping.name, tuple(stats), matrix, ratio, highest, lowest, note)


def same_group_distances(grouping: Grouping, pairs: PairSet) -> dict[str, npt.NDArray[np.float32]]:
    """Each known group's same-group impostor distances, sorted ascending."""
    a, b = grouping.codes[pairs.imp_i], grouping.codes[pairs.imp_j]
    same = a == b
    out = {}
    for n, name in enumerate(grouping.names):
        if grouping.known[n]:
            out[name] = np.sort(pairs.imp_distance[same & (a == n)])
    return out


def worst_group_curve(
    overall: Calibration,
    groups: dict[str, npt.NDArray[Any]],
    *,
    min_pairs: int,
    points: int = 400,
    dataset: str = "",
    grouping: str = "",
    command: str = "",
) -> Calibration:
    """Distance -> the highest same-group FMR among ``groups`` with at least
    ``min_pairs`` impostor pairs: ``max_g #(d_g <= d) / n_g``.

    Returns it as a :class:`Calibration` (its FNMR column read from ``overall``),
    for :meth:`Calibration.with_worst_group`. ``groups``: sorted distances.
    """
    kept = {k: np.sort(np.asarray(v, dtype=np.float64)) for k, v in groups.items()}
    kept = {k: v for k, v in kept.items() if v.size >= min_pairs}
    if len(kept) < 2:
        raise UsageError(
            f"a worst-group curve needs at least two groups with {min_pairs} or more "
            f"impostor pairs; {len(kept)} have that many"
        )
    picks = [
        d[np.unique(np.round(np.geomspace(1, d.size, points)).astype(np.int64)) - 1]
        for d in kept.values()
    ]
    # Rounded as the table is stored, so that a saved curve still ascends strictly.
    grid = np.unique(np.round(np.concatenate(picks), 6))
    # Counted against the rounded distances too: a grid point rounded down below its own
    # distance would otherwise count no pair at all (a rate of 0, which no table may hold);
    # whether that happens turns on the last bits of the descriptors, which differ by CPU.
    worst = np.max(
        [np.searchsorted(np.round(d, 6), grid, side="right") / d.size for d in kept.values()],
        axis=0,
    )
    fnmr = np.array([overall.false_non_match_rate(float(d)) for d in grid])
    return Calibration(
        model_id=overall.model_id,
        distances=grid,
        fmr=worst,
        fnmr=fnmr,
        impostor_pairs=min(v.size for v in kept.values()),
        genuine_pairs=overall.genuine_pairs,
        dataset=dataset,
        recipe=overall.recipe,
        command=command,
        extra={"grouping": grouping, "group_pairs": {k: int(v.size) for k, v in kept.items()}},
    )


@dataclass(frozen=True, slots=True)
class DemographicsReport:
    """The whole run: operating point, overall rates and each grouping."""

    dataset: str
    threshold: float
    threshold_source: str
    target_fmr: float
    images: int
    identities: int
    has_identity: bool
    overall_fmr: Rate
    overall_fnmr: Rate
    not_detected: Rate
    impostor_population: int
    sampled: bool
    groupings: tuple[GroupingReport, ...]
    worst_group_scope: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def worst(self) -> tuple[str, GroupStats] | None:
        """The grouping and group with the highest usable same-group FMR."""
        best: tuple[str, GroupStats] | None = None
        for gr in self.groupings:
            w = gr.worst
            if w is not None and (
                best is None or (w.fmr_same.value or 0.0) > (best[1].fmr_same.value or 0.0)
            ):
                best = (gr.name, w)
        return best

    def worst_summary(self) -> dict[str, Any] | None:
        found = self.worst()
        if found is None:
            return None
        name, g = found
        value = g.fmr_same.value or 0.0
        return {
            "grouping": name,
            "group": g.name,
            "fmr": g.fmr_same.to_dict(),
            "times_target": round(value / self.target_fmr, 3),
            "meets_target": value <= self.target_fmr,
            "verdict": g.verdict,
            "threshold_for_target_fmr": None
            if g.threshold_for_target is None
            else round(g.threshold_for_target, 4),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "threshold": round(self.threshold, 6),
            "threshold_source": self.threshold_source,
            "target_fmr": self.target_fmr,
            "images": self.images,
            "identities": self.identities,
            "identity_labels": self.has_identity,
            "overall": {
                "fmr": self.overall_fmr.to_dict(),
                "fnmr": self.overall_fnmr.to_dict(),
                "not_detected": self.not_detected.to_dict(),
                "impostor_pairs_in_population": self.impostor_population,
                "impostor_pairs_sampled": self.sampled,
            },
            "worst_group": self.worst_summary(),
            "groupings": [g.to_dict() for g in self.groupings],
            "intervals": "95% Wilson score, pairs taken as independent (they share faces, "
            "so true uncertainty is larger)",
            **self.extra,
        }


def evaluate_demographics(
    labels: LabelSet,
    embeddings: Sequence[npt.NDArray[np.float32] | None],
    *,
    threshold: float,
    target_fmr: float,
    threshold_source: str = "",
    dataset: str = "",
    combine: bool = True,
    max_pairs: int = 20_000_000,
    seed: int = 0,
) -> tuple[DemographicsReport, PairSet]:
    """Measure every grouping of ``labels`` at ``threshold``; ``embeddings[i]``
    belongs to ``labels.images[i]`` (None: no face found)."""
    if not 0 < target_fmr < 1:
        raise UsageError(f"the target false-match rate must be in (0, 1), got {target_fmr}")
    pairs = build_pairs(labels.identities, embeddings, max_pairs=max_pairs, seed=seed)
    found = np.array([e is not None for e in embeddings], dtype=bool)
    overall = Rate(int((pairs.imp_distance < threshold).sum()), int(pairs.imp_distance.size))
    overall_value = overall.value or 0.0
    both = np.isfinite(pairs.gen_distance)
    reports = tuple(
        evaluate_grouping(
            grouping,
            pairs,
            found,
            labels.identities,
            threshold=threshold,
            target_fmr=target_fmr,
            overall_fmr=overall_value,
        )
        for grouping in groupings(labels, combine)
    )
    report = DemographicsReport(
        dataset=dataset,
        threshold=threshold,
        threshold_source=threshold_source,
        target_fmr=target_fmr,
        images=len(labels.images),
        identities=len(set(labels.identities)),
        has_identity=labels.has_identity,
        overall_fmr=overall,
        overall_fnmr=Rate(int((pairs.gen_distance[both] >= threshold).sum()), int(both.sum())),
        not_detected=Rate(int((~found).sum()), found.size),
        impostor_population=pairs.impostor_population,
        sampled=pairs.sampled,
        groupings=reports,
    )
    return report, pairs
