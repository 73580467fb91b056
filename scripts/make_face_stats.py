"""Regenerate ``src/facetrace/data/dlib_descriptor_stats.npz`` from real face descriptors.

The file holds the statistics that :mod:`facetrace.evaluation.bench_index` uses to draw
synthetic, face-like dlib descriptors: the global mean, and factors of the between-identity
and within-identity covariances (so ``x = mean + B z_identity + W z_photo``, ``z ~ N(0, I)``).

Usage (needs the LFW development images, read-only; a few minutes on one core)::

    .venv/bin/python scripts/make_face_stats.py /work/shared/data/lfw-dev/images \
        --out src/facetrace/data/dlib_descriptor_stats.npz

Faces are detected with dlib's HOG detector, aligned with the 5-point model and embedded
with dlib's ResNet (face_recognition_models). Identities with several photos give the
within-identity spread; the rest of the variance is between identities.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def _factor(cov: np.ndarray) -> np.ndarray:
    """Return ``F`` (d, d) with ``F @ F.T`` the nearest PSD matrix to ``cov``."""
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2.0)
    vals = np.clip(vals, 0.0, None)
    return (vecs * np.sqrt(vals)[None, :]).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, help="folder of NAME/NAME_000i.jpg images")
    parser.add_argument(
        "--out", type=Path, default=Path("src/facetrace/data/dlib_descriptor_stats.npz")
    )
    parser.add_argument("--max-per-identity", type=int, default=6)
    parser.add_argument("--max-faces", type=int, default=700)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import dlib
    import face_recognition_models
    from PIL import Image

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )
    model = dlib.face_recognition_model_v1(
        face_recognition_models.face_recognition_model_location()
    )

    rng = np.random.default_rng(args.seed)
    people = sorted(p for p in args.images.iterdir() if p.is_dir())
    multi = [p for p in people if len(list(p.glob("*.jpg"))) >= 2]
    single = [p for p in people if len(list(p.glob("*.jpg"))) == 1]
    rng.shuffle(single)
    # Every multi-photo identity (capped), then singletons to fill the budget.
    plan: list[tuple[int, Path]] = []
    for label, person in enumerate(multi):
        for img in sorted(person.glob("*.jpg"))[: args.max_per_identity]:
            plan.append((label, img))
    for label, person in enumerate(single, start=len(multi)):
        plan.append((label, next(person.glob("*.jpg"))))
    plan = plan[: args.max_faces]

    descs: list[np.ndarray] = []
    labels: list[int] = []
    t0 = time.perf_counter()
    for label, path in plan:
        img = np.asarray(Image.open(path).convert("RGB"))
        dets = detector(img, 1)
        if len(dets) == 0:
            continue
        # LFW images are centred on the named person: take the detection closest to the centre.
        cx, cy = img.shape[1] / 2, img.shape[0] / 2
        det = min(dets, key=lambda r: (r.center().x - cx) ** 2 + (r.center().y - cy) ** 2)
        shape = predictor(img, det)
        descs.append(np.asarray(model.compute_face_descriptor(img, shape), dtype=np.float64))
        labels.append(label)
    x = np.stack(descs)
    y = np.asarray(labels)
    took = time.perf_counter() - t0
    print(f"{x.shape[0]} faces from {np.unique(y).size} identities in {took:.0f} s")

    mean = x.mean(0)
    total = np.cov(x, rowvar=False)
    # Pooled within-identity covariance over identities with >= 2 faces.
    resid = []
    for lab in np.unique(y):
        rows = x[y == lab]
        if rows.shape[0] >= 2:
            resid.append(rows - rows.mean(0))
    r = np.concatenate(resid)
    dof = r.shape[0] - len(resid)
    within = r.T @ r / dof
    between = total - within

    norms = np.linalg.norm(x, axis=1)
    same, diff = [], []
    for i in range(x.shape[0]):
        d = np.linalg.norm(x[i + 1 :] - x[i], axis=1)
        s = y[i + 1 :] == y[i]
        same.extend(d[s])
        diff.extend(d[~s])
    np.savez_compressed(
        args.out,
        mean=mean.astype(np.float32),
        between_factor=_factor(between),
        within_factor=_factor(within),
        n_faces=np.int64(x.shape[0]),
        n_identities=np.int64(np.unique(y).size),
        norm_mean=np.float32(norms.mean()),
        norm_std=np.float32(norms.std()),
        same_dist_mean=np.float32(np.mean(same)),
        diff_dist_mean=np.float32(np.mean(diff)),
    )
    print(
        f"norm {norms.mean():.3f}+-{norms.std():.3f}; same-person distance {np.mean(same):.3f}, "
        f"different-person {np.mean(diff):.3f}; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
