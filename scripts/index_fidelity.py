"""Are the bench's synthetic faces as hard for the production index as real faces?

For each real set, the engine's own descriptors (the default pipeline, as a gallery holds
them) are split as a collected gallery is searched (``facelike.open_set_split``: one photo
of every repeated person held out as an enrolled probe, as many one-photo people held out
as strangers), and the FAISS backend's two approximate structures are built on the
gallery: its HNSW graph (default M, efConstruction, principal subspace) searched at the
default efSearch and below it, and its IVF-PQ fast-scan structure (64 lists at this
size) probed at the default share of lists and below it, candidates re-ranked exactly.
Synthetic faces with the same identity sizes go through the same splits. The report
gives, per setting (``*``: the default), both miss rates (true top-10 neighbours not
returned), their difference with its standard error over the splits, and the ratio;
then the ratio pooled over each structure's settings.

``--write`` stores the real side in the stats file, where
``tests/evaluation/test_facelike.py`` compares the generator with it on every run.

Usage (seconds with the descriptor cache ``eval`` commands fill; ~10 minutes per 3,000
images on one core without it)::

    .venv/bin/python scripts/index_fidelity.py \\
        --folders lfw-dev=/work/shared/data/lfw-dev/images \\
        --singles utkface=/work/shared/data/demographics/utkface \\
        --cache /tmp/ft-eval [--splits 20] [--json OUT.json] [--write]

``--folders``: one folder per person (identity = folder); ``--singles``: a flat folder of
one photo per person, keyed in the cache relative to its parent, as ``eval demographics``
keys them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from facetrace.evaluation.facelike import (
    STATS_FILE,
    FaceLikeGenerator,
    compare_misses,
    pooled_ratio,
    production_description,
    production_misses,
    production_settings,
)
from facetrace.evaluation.variants import recipe
from facetrace.index.structures import FaissTuning


def _describe(
    root: Path, files: list[Path], key_root: Path, cache: Path
) -> list[np.ndarray | None]:
    describer = recipe("default", cache)
    out = []
    for n, path in enumerate(files, 1):
        out.append(describer.describe(path, path.relative_to(key_root).as_posix()).embedding)
        if n % 500 == 0:
            describer.flush()
            print(f"{root}: described {n}/{len(files)}", file=sys.stderr, flush=True)
    describer.flush()
    return out


def _load(spec: str, flat: bool, cache: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """``(name, x, labels)``: faces sorted by person, labels ``0..P-1`` in that order."""
    name, _, folder = spec.partition("=")
    root = Path(folder)
    files = sorted(root.glob("*.jpg") if flat else root.glob("*/*.jpg"))
    embs = _describe(root, files, root.parent if flat else root, cache)
    kept = [(p, e) for p, e in zip(files, embs, strict=True) if e is not None]
    people = [p.name if flat else p.parent.name for p, _ in kept]
    _, labels = np.unique(people, return_inverse=True)
    order = np.argsort(labels, kind="stable")
    x = np.stack([e for _, e in kept])[order]
    return name, x, labels[order].astype(np.int64)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--singles", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--cache", type=Path, required=True, help="descriptor cache folder")
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--json", type=Path, help="write the report here too")
    parser.add_argument(
        "--write", action="store_true", help="store the real side in the stats file"
    )
    args = parser.parse_args()

    tuning = FaissTuning()
    settings = production_settings(tuning)
    structures = sorted({s.kind for s in settings})
    sets = [_load(s, False, args.cache) for s in args.folders]
    sets += [_load(s, True, args.cache) for s in args.singles]
    report: dict[str, object] = {
        "structures": production_description(tuning),
        "splits": args.splits,
        "sets": {},
    }
    stored: dict[str, np.ndarray] = {}
    for name, x, labels in sets:
        sizes = np.bincount(labels)
        real = production_misses(x, labels, args.splits, tuning)
        synthetic = production_misses(FaceLikeGenerator().like(sizes), labels, args.splits, tuning)
        rows = compare_misses(settings, real, synthetic)
        ratios = {
            kind.value: pooled_ratio(real, synthetic, np.array([s.kind is kind for s in settings]))
            for kind in structures
        }
        print(
            f"\n{name}: {x.shape[0]} faces of {sizes.size} people "
            f"({int((sizes == 1).sum())} with one photo); {args.splits} splits, "
            f"{int(real[1][0]) // 10} probes each"
        )
        print(
            "setting            real rate (n)        synthetic (n)        synth - real      ratio"
        )
        for r in rows:
            label = r.setting + (" *" if r.default else "")
            print(
                f"{label:<18} {r.real_rate:.5f} ({r.real_misses:>5})  "
                f"{r.synthetic_rate:.5f} ({r.synthetic_misses:>5})  "
                f"{r.difference:+.5f} +- {r.standard_error:.5f}  {r.ratio:6.2f}"
            )
        for kind, ratio in ratios.items():
            print(f"pooled synthetic / real miss rate, {kind}: {ratio:.2f}")
        report["sets"][name] = {  # type: ignore[index]
            "faces": int(x.shape[0]),
            "people": int(sizes.size),
            "one_photo_people": int((sizes == 1).sum()),
            "rows": [asdict(r) for r in rows],
            "pooled_ratio": {kind: round(r, 3) for kind, r in ratios.items()},
        }
        stored[f"production_{name}_sizes"] = sizes.astype(np.int32)
        stored[f"production_{name}_misses"] = real[0]
        stored[f"production_{name}_slots"] = real[1]
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.write:
        with np.load(STATS_FILE) as old:
            keep = {k: old[k] for k in old.files if not k.startswith("production_")}
        keep["production_sets"] = np.array([name for name, _, _ in sets])
        keep["production_structures"] = np.array(production_description(tuning))
        np.savez_compressed(STATS_FILE, **keep, **stored)
        print(f"wrote the real side to {STATS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
