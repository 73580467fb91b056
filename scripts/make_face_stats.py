"""Regenerate ``src/facetrace/data/dlib_descriptor_stats.npz`` from real face descriptors.

The file holds the model :class:`facetrace.evaluation.facelike.FaceLikeGenerator` draws
from (see that module), fitted to plain dlib descriptors (HOG, 5-point alignment, ResNet)
of every lfw-dev image, and the weak-graph fidelity figures of those real faces used to
choose the model. The figures a test checks the generator against (the production
graph's misses on real faces) come from ``scripts/index_fidelity.py`` and are kept.

Usage (about 10 minutes on one core the first time; the descriptor cache makes reruns
take seconds)::

    .venv/bin/python scripts/make_face_stats.py /work/shared/data/lfw-dev/images \
        --cache /tmp/ft-eval --out src/facetrace/data/dlib_descriptor_stats.npz

It first prints a held-out check: half of the identities fit each candidate model, and
descriptors drawn from it (with the other half's identity sizes) are compared with the
other half's real descriptors. Then it fits ``--components``/``--shrink`` on everyone.
``--also DIR`` adds a flat folder of one-photo-per-person faces (for example UTKFace) to
the held-out check only: a second, more diverse population the model never saw.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from facetrace.evaluation.facelike import FIDELITY_EF, FaceLikeGenerator, fidelity, fit_mixture
from facetrace.evaluation.variants import recipe

CANDIDATES = ((1, 0.0), (4, 0.2), (8, 0.2), (16, 0.2), (32, 0.3))


def _describe(images: Path, cache: Path, flat: bool = False) -> tuple[np.ndarray, np.ndarray]:
    describer = recipe("baseline", cache)
    files = sorted(images.glob("*.jpg") if flat else images.glob("*/*.jpg"))
    vecs, names = [], []
    for n, path in enumerate(files, 1):
        d = describer.describe(path, path.relative_to(images).as_posix())
        if d.embedding is not None:
            vecs.append(d.embedding.astype(np.float64))
            names.append(path.name if flat else path.parent.name)
        if n % 500 == 0:
            describer.flush()
            print(f"described {n}/{len(files)}", file=sys.stderr, flush=True)
    describer.flush()
    _, labels = np.unique(names, return_inverse=True)
    return np.stack(vecs), labels.astype(np.int64)


def _row(name: str, fid: dict[str, float]) -> str:
    curve = " ".join(f"{fid[f'hnsw_ef{ef}']:.3f}" for ef in FIDELITY_EF)
    return f"{name:<24} lid20 {fid['lid20']:5.2f}  contrast {fid['contrast']:.3f}  hnsw {curve}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, help="folder of NAME/NAME_000i.jpg images")
    parser.add_argument("--cache", type=Path, required=True, help="descriptor cache folder")
    parser.add_argument(
        "--out", type=Path, default=Path("src/facetrace/data/dlib_descriptor_stats.npz")
    )
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--shrink", type=float, default=0.2)
    parser.add_argument("--also", type=Path, help="flat folder of one-photo people (check only)")
    parser.add_argument("--also-cache", type=Path, help="descriptor cache for --also")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    x, y = _describe(args.images, args.cache)
    print(f"{x.shape[0]} faces of {y.max() + 1} people")

    rng = np.random.default_rng(args.seed)
    people = rng.permutation(y.max() + 1)
    halves = [np.isin(y, people[: people.size // 2]), np.isin(y, people[people.size // 2 :])]
    fit_x, fit_y = x[halves[0]], y[halves[0]]
    test_x, test_y = x[halves[1]], np.unique(y[halves[1]], return_inverse=True)[1]
    test_sizes = np.bincount(test_y)
    print(f"held-out check: fit on {fit_x.shape[0]} faces, compare with {test_x.shape[0]}")
    print(_row("real, held out", fidelity(test_x)))
    models = {}
    for k, shrink in CANDIDATES:
        model = models[(k, shrink)] = fit_mixture(fit_x, fit_y, k, shrink, args.seed)
        drawn = FaceLikeGenerator(seed=1, stats=model).like(test_sizes)
        print(_row(f"K={k} shrink={shrink}", fidelity(drawn)))
    if args.also is not None:
        other, _ = _describe(args.also, args.also_cache or args.cache, flat=True)
        print(f"second population: {other.shape[0]} one-photo faces from {args.also}")
        print(_row("real, second population", fidelity(other)))
        ones = np.ones(other.shape[0], dtype=np.int64)
        for (k, shrink), model in models.items():
            drawn = FaceLikeGenerator(seed=2, stats=model).like(ones)
            print(_row(f"K={k} shrink={shrink}", fidelity(drawn)))

    final = fit_mixture(x, y, args.components, args.shrink, args.seed)
    real = fidelity(x)
    sizes = np.bincount(y)
    norms = np.linalg.norm(x, axis=1)
    kept = {}  # the production-graph figures of scripts/index_fidelity.py stay
    if args.out.is_file():
        with np.load(args.out) as old:
            kept = {k: old[k] for k in old.files if k.startswith("production_")}
    np.savez_compressed(
        args.out,
        **kept,
        **final,
        n_faces=np.int64(x.shape[0]),
        n_identities=np.int64(sizes.size),
        norm_mean=np.float32(norms.mean()),
        norm_std=np.float32(norms.std()),
        fidelity_sizes=sizes.astype(np.int32),
        fidelity_keys=np.array(sorted(real)),
        fidelity_real=np.array([real[key] for key in sorted(real)], dtype=np.float64),
    )
    print(_row("real, all (stored)", real))
    print(f"norm {norms.mean():.3f}+-{norms.std():.3f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
