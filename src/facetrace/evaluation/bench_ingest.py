"""``bench ingest``: the pipeline against a plain one-image-at-a-time dlib loop.

The baseline is what a face_recognition user runs, on the same dlib wheel:
``load_image_file`` (PIL -> RGB array), ``face_locations`` (HOG, upsample 1),
``face_encodings`` (5-point landmarks, ResNet descriptor, no jitter), one image
at a time in one process. Both run in the same invocation so the ratio is fair
on a shared, noisy machine.

With ``cluster`` it measures scale-out instead: the pipeline with its analyses on the
Ray cluster's first 1, 2, ... worker nodes, and the embedded pipeline (worker processes
on this machine) with as many workers as the largest run had cluster CPUs, on the same
images in the same run. Every run commits to a fresh SQLite + FAISS gallery on this
machine, so the ratios measure the cluster alone, not the stores.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facetrace.config import Settings
from facetrace.errors import UsageError
from facetrace.ingest.folder import iter_files


def plain_dlib_loop(files: Sequence[Path]) -> dict[str, Any]:
    """Time face_recognition's recipe, one image at a time. Returns counts and seconds."""
    import dlib

    from facetrace.vision.dlib_models import model_path

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model_path("landmarks5")))
    net = dlib.face_recognition_model_v1(str(model_path("resnet")))
    stages = {"decode": 0.0, "detect": 0.0, "embed": 0.0}
    faces = 0
    errors = 0
    start = time.perf_counter()
    for file in files:
        t0 = time.perf_counter()
        try:
            image = np.asarray(Image.open(file).convert("RGB"))
        except Exception:
            errors += 1
            continue
        t1 = time.perf_counter()
        rects = detector(image, 1)
        shapes = [predictor(image, r) for r in rects]
        t2 = time.perf_counter()
        for shape in shapes:
            np.asarray(net.compute_face_descriptor(image, shape, 1))
        t3 = time.perf_counter()
        faces += len(shapes)
        stages["decode"] += t1 - t0
        stages["detect"] += t2 - t1
        stages["embed"] += t3 - t2
    seconds = time.perf_counter() - start
    return {
        "images": len(files) - errors,
        "faces": faces,
        "errors": errors,
        "seconds": round(seconds, 3),
        "images_per_s": round((len(files) - errors) / seconds, 3),
        "faces_per_s": round(faces / seconds, 3),
        "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
    }


def pipeline_run(
    files: Sequence[Path],
    workers: int,
    settings: Settings | None = None,
    *,
    cluster: str | None = None,
    cluster_nodes: int | None = None,
) -> dict[str, Any]:
    """Ingest ``files`` into a fresh temporary gallery (SQLite and FAISS) and time it,
    analysed by ``workers`` local processes or on ``cluster_nodes`` nodes of ``cluster``."""
    from facetrace.app import FaceTrace
    from facetrace.config import IndexBackend

    with tempfile.TemporaryDirectory(prefix="facetrace-bench-") as tmp:
        base = settings or Settings()
        s = base.model_copy(
            update={"home": Path(tmp), "database_url": None, "index_backend": IndexBackend.FAISS}
        )
        with FaceTrace.open(s) as engine:
            engine.add_source("bench", lawful_basis="benchmark")
            start = time.perf_counter()
            cpu = time.process_time()  # this process's, not its workers'
            summary = engine.ingest(
                list(files),
                source="bench",
                workers=workers,
                cluster=cluster,
                cluster_nodes=cluster_nodes,
            )
            seconds = time.perf_counter() - start
            driver_cpu = time.process_time() - cpu
    n = summary.photos_added + summary.duplicates
    return {
        "workers": workers,
        "images": n,
        "driver_cpu_ms_per_image": round(1000 * driver_cpu / n, 3) if n else None,
        "faces": summary.faces_added,
        "errors": len(summary.errors),
        "seconds": round(seconds, 3),
        "images_per_s": round(n / seconds, 3),
        "faces_per_s": round(summary.faces_added / seconds, 3),
        "stage_seconds": {k: round(v, 3) for k, v in summary.stage_seconds.items()},
    }


def bench_ingest(
    folder: Path,
    *,
    limit: int | None = None,
    workers: int | None = None,
    baseline: bool = True,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Run the plain loop and the pipeline (1 worker and ``workers``) on the same files."""
    files = list(iter_files([folder]))
    if limit:
        files = files[:limit]
    n_workers = workers or os.cpu_count() or 1
    report: dict[str, Any] = {
        "images": len(files),
        "folder": str(folder),
        "cpu_count": os.cpu_count(),
    }
    if baseline:
        report["plain_dlib_loop"] = plain_dlib_loop(files)
    report["pipeline_1_worker"] = pipeline_run(files, 1, settings)
    if n_workers > 1:
        report[f"pipeline_{n_workers}_workers"] = pipeline_run(files, n_workers, settings)
    best = max(
        (v for k, v in report.items() if k.startswith("pipeline_")),
        key=lambda r: r["images_per_s"],
    )
    report["best_pipeline_images_per_s"] = best["images_per_s"]
    if baseline:
        base = report["plain_dlib_loop"]["images_per_s"]
        report["speedup_vs_plain_loop"] = round(best["images_per_s"] / base, 3) if base else None
    return report


def bench_cluster_ingest(
    folder: Path,
    cluster: str,
    *,
    nodes: Sequence[int] = (1, 2),
    limit: int | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Images/s on the first ``n`` worker nodes of ``cluster`` for each ``n`` in ``nodes``,
    and of the embedded pipeline with as many local workers as the largest run's CPUs.

    ``scale_out`` is each run's images/s over the one-node run's; ``cluster_overhead``
    is the share of the embedded pipeline's images/s that the largest cluster run loses
    with the same number of CPUs (0: none; it includes the cluster's own processes
    sharing this machine when the nodes run here)."""
    from facetrace.ingest.cluster import node_cpus

    files = list(iter_files([folder]))
    if limit:
        files = files[:limit]
    counts = sorted(set(nodes))
    cpus = node_cpus(cluster)
    if not counts or counts[0] < 1 or counts[-1] > len(cpus):
        raise UsageError(
            f"--nodes {','.join(map(str, counts))}: the cluster has {len(cpus)} worker nodes"
        )
    report: dict[str, Any] = {
        "images": len(files),
        "folder": str(folder),
        "cluster": cluster,
        "cpu_count": os.cpu_count(),
        "node_cpus": cpus,
    }
    runs: dict[int, dict[str, Any]] = {}
    for n in counts:
        run = pipeline_run(files, 1, settings, cluster=cluster, cluster_nodes=n)
        runs[n] = {"nodes": n, "cpus": sum(cpus[:n]), **run}
        report[f"cluster_{n}_node{'s' if n > 1 else ''}"] = runs[n]
    local_workers = runs[counts[-1]]["cpus"]
    local = pipeline_run(files, local_workers, settings)
    report[f"embedded_{local_workers}_workers"] = local
    first = runs[counts[0]]["images_per_s"]
    report["scale_out"] = {
        str(n): round(r["images_per_s"] / first, 3) if first else None for n, r in runs.items()
    }
    largest = runs[counts[-1]]["images_per_s"]
    report["cluster_overhead"] = (
        round(1 - largest / local["images_per_s"], 3) if local["images_per_s"] else None
    )
    return report
