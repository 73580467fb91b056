"""The variants table of docs/accuracy.md: each variant on lfw-dev, three ways, from the cache.

For each variant: 10-fold accuracy on pairs-dev.txt (1500 pairs, the LFW protocol);
FNMR at FMR 1e-3 and 1e-4 over *all* pairs of the 3058 faces (4.6 M impostor, 51 k
genuine pairs: far more statistical power than 1500 pairs); open-set identification
rank-1 and FNIR at FPIR 1e-2 on the split of scripts/make_identify_split.py; and the
measured seconds per image (decode + detect + embed, one core, shared machine).

Usage (fill the cache first with scripts/describe_images.py)::

    .venv/bin/python scripts/make_identify_split.py /work/shared/data/lfw-dev/images \
        --out /tmp/ft-split
    nice -n 10 .venv/bin/python scripts/variant_report.py --cache /tmp/ft-eval \
        --split /tmp/ft-split baseline noflip default nofallback pad0.2 pad0.3 cut300 jitter10
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facetrace.evaluation.calibration import impostor_genuine_distances
from facetrace.evaluation.identify import evaluate_identification, identity_of, read_list
from facetrace.evaluation.metrics import threshold_at_far
from facetrace.evaluation.pairs import describe_all, evaluate_pairs, read_pairs
from facetrace.evaluation.variants import recipe

LFW = Path("/work/shared/data/lfw-dev")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--images", type=Path, default=LFW / "images")
    parser.add_argument("--pairs", type=Path, default=LFW / "pairs-dev.txt")
    args = parser.parse_args()
    pairs = read_pairs(args.pairs)
    gallery, probes, nonmated = (
        read_list(args.split / f"{n}.txt") for n in ("gallery", "probes", "nonmated")
    )
    keys = sorted(p.relative_to(args.images).as_posix() for p in args.images.rglob("*.jpg"))
    print(
        "| variant | pairs-dev accuracy ± sd | all-pairs FNMR @ FMR 1e-3 | @ FMR 1e-4 "
        "| rank-1 | FNIR @ FPIR 1e-2 | ms/image |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.variants:
        d = recipe(name, args.cache)
        rep = evaluate_pairs(pairs, args.images, d, variant=name)
        described = describe_all(d, args.images, keys)
        found = [k for k in keys if described[k].embedding is not None]
        emb = np.stack([described[k].embedding for k in found])  # type: ignore[misc]
        imp, gen = impostor_genuine_distances(emb, [identity_of(k) for k in found])
        # over the faces found (a variant without fallback leaves its failed images out)
        fnmr = [float(np.mean(gen >= threshold_at_far(imp, fmr))) for fmr in (1e-3, 1e-4)]
        ident = evaluate_identification(
            args.images, gallery, probes, nonmated, d, variant=name
        ).data
        print(
            f"| {name} | {100 * rep.accuracy:.2f}% ± {100 * rep.accuracy_std:.2f} "
            f"| {100 * fnmr[0]:.2f}% | {100 * fnmr[1]:.2f}% "
            f"| {100 * ident['rank1']['value']:.2f}% "
            f"| {100 * ident['fnir_at_fpir']['0.01']['fnir']['value']:.1f}% "
            f"| {rep.ms_per_image:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
