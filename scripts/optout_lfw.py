"""Opt-out on LFW: how many of a person's other photos escape, and how many unrelated
faces each opt-out wrongly hides, for the reference-only rule and the group rule.

Protocol (``--images``, one folder per person; descriptors from the engine's default
pipeline, cached in ``--cache``):

- every person with >= 2 photos opts out with their first photo (the *template*); the
  gallery is every other photo;
- **miss rate**: share of the opted-out person's other photos the opt-out does not reach;
- **per-template false suppression**: share of the other people's photos it reaches,
  over every template x control pair (10,000 opt-outs hide about 10,000x this share);
- ``reference-only``: faces closer than the direct distance (the old rule);
  ``group``: :func:`facetrace.identity.reach.reach`, the engine's rule (the person
  grown from the reference), with the configured distances;
- people are split in two halves by a hash of the name: the defaults were chosen on
  half 0 and are reported on half 1 and on all;
- **later photos**: the same for photos that arrive after the opt-out and meet the
  ingest suppressor (see :func:`later_photos`).

Usage::

    .venv/bin/python scripts/optout_lfw.py --images /work/shared/data/lfw-dev/images \\
        --cache /tmp/ft-eval
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np

from facetrace.config import Settings
from facetrace.evaluation.variants import recipe
from facetrace.governance.repository import TemplateSet
from facetrace.governance.suppression import Suppression, reach_rule
from facetrace.identity.reach import ReachRule, reach


def describe(images: Path, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    describer = recipe("default", cache)
    embs, people = [], []
    for path in sorted(images.glob("*/*.jpg")):
        found = describer.describe(path, path.relative_to(images).as_posix())
        if found.embedding is not None:
            embs.append(found.embedding)
            people.append(path.parent.name)
    describer.flush()
    return np.asarray(embs, dtype=np.float64), np.asarray(people)


def evaluate(
    emb: np.ndarray, people: np.ndarray, directs: list[float], settings: Settings
) -> dict[str, object]:
    rows_of: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(people):
        rows_of[str(p)].append(i)
    multi = sorted(p for p, rows in rows_of.items() if len(rows) >= 2)
    templates = np.array([rows_of[p][0] for p in multi])
    gallery = np.setdiff1d(np.arange(len(people)), templates)
    g, gp = emb[gallery], people[gallery]
    d = np.sqrt(
        np.maximum(
            (emb[templates] ** 2).sum(1)[:, None]
            - 2 * emb[templates] @ g.T
            + (g**2).sum(1)[None, :],
            0,
        )
    )
    half = np.array([zlib.crc32(p.encode()) % 2 for p in multi])
    curves: dict[str, list[dict[str, object]]] = {"reference-only": [], "group": []}
    for direct in directs:
        rule = ReachRule(
            direct=direct,
            group_threshold=settings.optout_group_threshold,
            agree=settings.optout_agree,
            radius=max(settings.optout_radius, direct),
            votes=settings.optout_votes,
        )
        counts = {name: np.zeros((len(multi), 4)) for name in curves}
        for t, person in enumerate(multi):
            own = gp == person
            alone = d[t] < direct
            near = np.flatnonzero(d[t] < rule.radius)
            grouped = np.zeros(len(gallery), dtype=bool)
            grouped[near[reach(emb[templates[t]], g[near], gallery[near], rule)]] = True
            for name, hit in (("reference-only", alone), ("group", grouped)):
                counts[name][t] = [(own & ~hit).sum(), own.sum(), (~own & hit).sum(), (~own).sum()]
        for name, c in counts.items():
            row: dict[str, object] = {"direct": direct}
            for label, mask in (("half0", half == 0), ("half1", half == 1), ("all", half >= 0)):
                s = c[mask].sum(0)
                row[label] = {
                    "miss_rate": round(s[0] / s[1], 4),
                    "per_template_fsr": float(f"{s[2] / s[3]:.3g}"),
                    "false_suppressions": int(s[2]),
                    "pairs": int(s[3]),
                }
            curves[name].append(row)
    return {
        "templates": len(multi),
        "gallery": len(gallery),
        "group_threshold": settings.optout_group_threshold,
        "agree": settings.optout_agree,
        "votes": settings.optout_votes,
        "radius": settings.optout_radius,
        "default_direct": settings.optout_threshold,
        "curves": curves,
    }


def later_photos(emb: np.ndarray, people: np.ndarray, settings: Settings) -> dict[str, object]:
    """Photos that arrive after the opt-out, kept out at ingest: every person with >= 3
    photos opts out with the first; every other of the rest (the 3rd, 5th, ...) arrives
    later, the others are in the gallery. The ingest suppressor with the reference alone
    against the engine's (the reference and the faces the opt-out reached)."""
    rows_of: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(people):
        rows_of[str(p)].append(i)
    multi = sorted(p for p, rows in rows_of.items() if len(rows) >= 3)
    templates = [rows_of[p][0] for p in multi]
    later = [i for p in multi for i in rows_of[p][2::2]]
    gallery = np.setdiff1d(np.arange(len(people)), np.array(templates + later))
    rule = reach_rule(settings)
    counts = {"reference-only": np.zeros(4), "reached faces": np.zeros(4)}
    for person, t in zip(multi, templates, strict=True):
        ref = emb[t]
        near = gallery[np.linalg.norm(emb[gallery] - ref, axis=1) < rule.radius]
        reached = emb[near[reach(ref, emb[near], near, rule)]]
        own = emb[rows_of[person][2::2]]
        others = emb[people != person]
        for name, faces in (
            ("reference-only", ref[None, :]),
            ("reached faces", np.vstack([ref[None, :], reached])),
        ):
            ts = TemplateSet(
                faces.astype(np.float32),
                np.zeros(len(faces), np.int64),
                np.arange(len(faces)) == 0,
            )
            sup = Suppression(ts, settings.optout_suppress_threshold, rule)
            counts[name] += [(~sup(own)).sum(), len(own), sup(others).sum(), len(others)]
    return {
        "templates": len(multi),
        "later_photos": len(later),
        **{
            name: {
                "miss_rate": round(c[0] / c[1], 4),
                "per_template_fsr": float(f"{c[2] / c[3]:.3g}"),
                "false_suppressions": int(c[2]),
                "pairs": int(c[3]),
            }
            for name, c in counts.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=Path("/work/shared/data/lfw-dev/images"))
    parser.add_argument("--cache", type=Path, required=True, help="descriptor cache folder")
    parser.add_argument(
        "--directs", type=float, nargs="+", default=[0.34, 0.36, 0.38, 0.4, 0.42, 0.45]
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    emb, people = describe(args.images, args.cache)
    report = evaluate(emb, people, args.directs, Settings())
    report["later_photos"] = later_photos(emb, people, Settings())
    report["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
