"""Time each accuracy variant's steps on the same images, in one process, one core.

Usage::

    nice -n 10 .venv/bin/python scripts/bench_variants.py /work/shared/data/lfw-dev/images --n 150

Prints milliseconds per image for detection (+ landmarks) per detector setting and per
face for the embedding step of each variant (chip cutting + descriptor), so the speed
cost in docs/accuracy.md's variants table is measured side by side under the same load.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from facetrace.evaluation.variants import PlainHogDetector, recipe
from facetrace.vision.dlib_models import CnnDetector, FivePointAligner, HogDetector
from facetrace.vision.imaging import load_image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path)
    parser.add_argument("--n", type=int, default=150)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ft-eval"))
    args = parser.parse_args()
    files = sorted(args.images.rglob("*.jpg"))
    step = max(1, len(files) // args.n)
    files = files[::step][: args.n]
    images = [load_image(f, max_bytes=1 << 26, max_pixels=80_000_000).pixels for f in files]
    aligner = FivePointAligner()
    shapes = []
    for name, det in (
        ("hog upsample 1 (baseline)", PlainHogDetector(1)),
        ("hog auto small-face pass (default)", HogDetector(40, 2000, small_faces="auto")),
        (
            "hog always upsampled for 40 px (flip and others)",
            HogDetector(40, 2000, small_faces="always"),
        ),
        ("hog always upsampled for 20 px (hog-up2)", HogDetector(20, 2000, small_faces="always")),
        ("cnn", CnnDetector(40, 1600)),
    ):
        if name == "cnn":
            images_cnn = images[:20]
            t0 = time.perf_counter()
            for img in images_cnn:
                det.detect(img)
            print(
                f"detect {name}: {1000 * (time.perf_counter() - t0) / len(images_cnn):.1f} ms/image"
            )
            continue
        t0 = time.perf_counter()
        found = []
        for img in images:
            dets = det.detect(img)
            dets.sort(key=lambda d: -(d.bbox.width * d.bbox.height))
            found.append(aligner.landmarks(img, dets[:1]))
        print(f"detect {name}: {1000 * (time.perf_counter() - t0) / len(images):.1f} ms/image")
        if "default" in name:
            shapes = found
    pairs = [(img, s) for img, s in zip(images, shapes, strict=True) if s]
    for variant in ("baseline", "noflip", "flip", "pad0.2", "cut300", "jitter10"):
        emb = recipe(variant, args.cache).embedder
        emb.embed(emb.chips(*pairs[0]))  # load the model
        t0 = time.perf_counter()
        out = [emb.embed(emb.chips(img, s)) for img, s in pairs]
        ms = 1000 * (time.perf_counter() - t0) / len(pairs)
        print(f"embed {variant}: {ms:.1f} ms/face ({np.concatenate(out).shape[0]} faces)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
