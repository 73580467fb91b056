"""Opt-out suppression on LFW: how often a person's *other* photos escape, and how often
other people's photos are wrongly suppressed.

Protocol (people with >= 2 photos in ``--images``, one folder per person):

- every photo is embedded once (HOG detection, the face nearest the centre, dlib ResNet
  descriptor through :class:`facetrace.vision.dlib_resnet.ResNetDescriptor`);
- the people with >= 2 photos are split at random (``--seed``) into an *opted-out* half and
  a *control* half; each opted-out person opts out with their first photo (the template);
- **miss rate**: share of the opted-out people's *other* photos that the ingest suppressor
  (:class:`facetrace.governance.optout.Suppression`, the pipeline's, with every template
  loaded) would still store;
- **false-suppression rate**: share of photos of people who did not opt out (the control
  half and every one-photo person) that it would wrongly drop;
- **per-template FSR**: chance that one template suppresses one unrelated photo (the
  false-suppression rate grows about linearly with the number of opt-outs).

Usage::

    nice -n 10 .venv/bin/python scripts/optout_lfw.py --images /work/shared/data/lfw-dev/images
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

from facetrace.config import Settings
from facetrace.governance.optout import Suppression
from facetrace.vision.analyzer import build_analyzer
from facetrace.vision.dlib_resnet import ResNetDescriptor
from facetrace.vision.imaging import decode_image


def embed_all(images: Path, cache: Path | None) -> tuple[list[str], list[str], np.ndarray]:
    """``(people, files, (n, 128) float32)`` for every photo with a detected face."""
    if cache is not None and cache.exists():
        data = np.load(cache)
        return list(data["people"]), list(data["files"]), data["emb"]
    analyzer = build_analyzer(Settings(home=Path("/tmp/facetrace-optout-lfw"), workers=1))
    descriptor = ResNetDescriptor(threads=1)
    people, files, embs = [], [], []
    paths = sorted(images.glob("*/*.jpg"))
    start = time.perf_counter()
    for n, path in enumerate(paths, 1):
        image = decode_image(path.read_bytes(), max_bytes=10**8, max_pixels=10**8).pixels
        shapes = analyzer.shapes(image)
        if shapes:
            cx, cy = image.shape[1] / 2, image.shape[0] / 2

            def off_centre(s: object, cx: float = cx, cy: float = cy) -> float:
                b = s.detection.bbox  # type: ignore[attr-defined]
                dx, dy = (b.left + b.right) / 2 - cx, (b.top + b.bottom) / 2 - cy
                return float(dx**2 + dy**2)

            shape = min(shapes, key=off_centre)
            chips = analyzer.embedder.chips(image, [shape])  # type: ignore[attr-defined]
            embs.append(descriptor.compute(chips)[0])
            people.append(path.parent.name)
            files.append(path.name)
        if n % 500 == 0:
            rate = n / (time.perf_counter() - start)
            print(f"embedded {n}/{len(paths)} ({rate:.1f} img/s)", file=sys.stderr)
    emb = np.asarray(embs, dtype=np.float32)
    if cache is not None:
        np.savez(cache, people=np.asarray(people), files=np.asarray(files), emb=emb)
    return people, files, emb


def evaluate(
    people: list[str], emb: np.ndarray, thresholds: list[float], seed: int
) -> dict[str, object]:
    by_person: dict[str, list[int]] = {}
    for i, p in enumerate(people):
        by_person.setdefault(p, []).append(i)
    multi = sorted(p for p, rows in by_person.items() if len(rows) >= 2)
    rng = random.Random(seed)
    shuffled = multi[:]
    rng.shuffle(shuffled)
    opted = set(shuffled[: len(shuffled) // 2])
    templates = [by_person[p][0] for p in sorted(opted)]
    owner = {t: people[t] for t in templates}
    others_of_opted = [i for p in sorted(opted) for i in by_person[p][1:]]
    control = [i for p, rows in by_person.items() if p not in opted for i in rows]
    t_emb = emb[templates]
    rows = []
    for thr in thresholds:
        sup = Suppression(t_emb, thr)
        missed_all = int((~sup(emb[others_of_opted])).sum())
        own_missed = 0
        for p in sorted(opted):
            own = Suppression(emb[by_person[p][:1]], thr)
            own_missed += int((~own(emb[by_person[p][1:]])).sum())
        false = int(sup(emb[control]).sum())
        # Per-template: one template against every photo of every other person.
        d = np.sqrt(
            np.maximum(
                (emb[control] ** 2).sum(1)[:, None]
                - 2 * emb[control].astype(np.float64) @ t_emb.T.astype(np.float64)
                + (t_emb.astype(np.float64) ** 2).sum(1)[None, :],
                0,
            )
        )
        pair_fsr = float((d < thr).mean())
        rows.append(
            {
                "threshold": thr,
                "miss_rate": round(own_missed / len(others_of_opted), 4),
                "miss_rate_all_templates": round(missed_all / len(others_of_opted), 4),
                "false_suppression_rate": round(false / len(control), 4),
                "per_template_fsr": round(pair_fsr, 6),
            }
        )
    del owner
    return {
        "photos_with_face": len(people),
        "people_opted_out": len(opted),
        "other_photos_of_opted_out": len(others_of_opted),
        "control_photos": len(control),
        "seed": seed,
        "results": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=Path("/work/shared/data/lfw-dev/images"))
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.4, 0.45, 0.5, 0.55, 0.6])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=None, help="npz of embeddings to reuse")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    people, _files, emb = embed_all(args.images, args.cache)
    report = evaluate(people, emb, args.thresholds, args.seed)
    report["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
