"""Benchmark dlib's face descriptor against the converted ResNet, in one run.

Prints one JSON object: milliseconds per face for dlib's
``compute_face_descriptor`` (one chip per call, and a list of chips per call)
and for :class:`facetrace.vision.dlib_resnet.ResNetDescriptor` (ONNX Runtime and
NumPy, batches of 1 and 16), all on one thread, with the speed-up over dlib one
by one and the largest difference from dlib's descriptors.

Usage: ``nice -n 10 .venv/bin/python scripts/bench_descriptor.py [--repeat 3]``
"""

from __future__ import annotations

import os

# One BLAS thread for the NumPy runtime; must be set before NumPy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
try:
    import facetrace  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "src"))

from facetrace.vision.dlib_resnet import ResNetDescriptor, ResNetRuntime  # noqa: E402

PHOTOS = ["obama.jpg", "biden.jpg", "two_people.jpg", "obama_and_biden.jpg"]


def face_chips(folder: Path) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """150x150 chips of the faces dlib's HOG detector finds in the fixture photos."""
    import dlib
    import face_recognition_models as frm
    from PIL import Image

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    chips = []
    for name in PHOTOS:
        image = np.asarray(Image.open(folder / name).convert("RGB"))
        for rect in detector(image, 1):
            chips.append(dlib.get_face_chip(image, predictor(image, rect), size=150, padding=0.25))
    return np.stack(chips)


def ms_per_face(run: Callable[[], object], faces: int, repeat: int) -> float:
    """Median over ``repeat`` timed calls (after one warm-up) of ms per face."""
    run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) / faces * 1e3, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per measurement")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument(
        "--fixtures", type=Path, default=ROOT / "tests" / "fixtures" / "face_recognition"
    )
    args = parser.parse_args()

    import dlib
    import face_recognition_models as frm

    chips = face_chips(args.fixtures)
    batch16 = np.concatenate([chips] * (16 // len(chips) + 1))[:16]
    one = chips[:1]
    dlib_model = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    reference = np.stack([np.asarray(dlib_model.compute_face_descriptor(c)) for c in chips])

    results: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus",
        "faces": len(chips),
        "threads": args.threads,
        "repeat": args.repeat,
        "ms_per_face": {},
        "max_abs_diff_vs_dlib": {},
    }
    timings: dict[str, float] = results["ms_per_face"]
    timings["dlib_one_by_one"] = ms_per_face(
        lambda: [dlib_model.compute_face_descriptor(c) for c in batch16], 16, args.repeat
    )
    timings["dlib_batched_list"] = ms_per_face(
        lambda: dlib_model.compute_face_descriptor(list(batch16)), 16, args.repeat
    )
    with tempfile.TemporaryDirectory() as cache:
        for runtime in ResNetRuntime:
            descriptor = ResNetDescriptor(
                cache_dir=Path(cache), threads=args.threads, runtime=runtime
            )
            start = time.perf_counter()
            ours = descriptor.compute(chips)
            results[f"{runtime}_first_call_s"] = round(time.perf_counter() - start, 3)
            results["max_abs_diff_vs_dlib"][str(runtime)] = float(np.abs(ours - reference).max())
            timings[f"{runtime}_batch1"] = ms_per_face(
                lambda d=descriptor: d.compute(one), 1, args.repeat * 8
            )
            timings[f"{runtime}_batch16"] = ms_per_face(
                lambda d=descriptor: d.compute(batch16), 16, args.repeat
            )
    base = timings["dlib_one_by_one"]
    results["speedup_vs_dlib_one_by_one"] = {
        key: round(base / value, 1) for key, value in timings.items() if value > 0
    }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
