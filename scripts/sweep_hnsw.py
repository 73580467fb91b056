"""Sweep FAISS HNSW-flat efSearch on face-like vectors: recall@10 and speedup vs exact.

Usage: python scripts/sweep_hnsw.py N M [EF_CONSTRUCTION] [--no-huge-pages] [--gaussian]
       [--enrolled]
Builds the graph in one FAISS call, then prints one JSON line per efSearch value (one
thread for queries, 2 for the build): first on 4 KiB pages, then, unless --no-huge-pages,
again after backing graph and vectors with 2 MiB pages as the backend does. The exact
baseline is re-timed before each pass. ``--gaussian`` draws from the older single-Gaussian
face model instead of the fitted mixture; ``--enrolled`` the earlier gallery shape (about
four photos of everyone, 20% stranger probes) instead of the collected one.
"""

from __future__ import annotations

import json
import sys
import time

import faiss
import numpy as np

from facetrace.evaluation.bench_index import _exact_topk
from facetrace.evaluation.facelike import FaceLikeGenerator, GalleryShape, recall_at_k
from facetrace.index.hugepages import advise_structure


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n, m = int(args[0]), int(args[1])
    ef_construction = int(args[2]) if len(args) > 2 else 200
    gen = FaceLikeGenerator(
        128,
        0,
        shape=GalleryShape.ENROLLED if "--enrolled" in sys.argv else GalleryShape.COLLECTED,
        model="gaussian" if "--gaussian" in sys.argv else "mixture",
    )
    data = gen.fill(np.empty((n, 128), np.float32))
    q = gen.queries(1000, n)
    truth = _exact_topk(data, q, 10)
    faiss.omp_set_num_threads(2)
    index = faiss.IndexHNSWFlat(128, m)
    index.hnsw.efConstruction = ef_construction
    t = time.perf_counter()
    index.add(data)
    build_s = time.perf_counter() - t
    passes = [False] if "--no-huge-pages" in sys.argv else [False, True]
    for huge in passes:
        huge_bytes = advise_structure(faiss, index) if huge else 0
        faiss.omp_set_num_threads(1)
        t = time.perf_counter()
        for i in range(50):
            faiss.knn(q[i : i + 1], data, 10)
        exact_s = (time.perf_counter() - t) / 50
        for ef in (32, 48, 64, 80, 96, 112, 128, 144, 160, 192):
            index.hnsw.efSearch = ef
            found = np.empty((1000, 10), np.int64)
            times = []
            for i in range(1000):
                t = time.perf_counter()
                _, found[i : i + 1] = index.search(q[i : i + 1], 10)
                times.append(time.perf_counter() - t)
            recall = recall_at_k(truth, found)
            print(
                json.dumps(
                    {
                        "n": n,
                        "face_model": gen.model,
                        "gallery": gen.shape.value,
                        "M": m,
                        "efConstruction": ef_construction,
                        "build_s": round(build_s, 1),
                        "huge_page_bytes": huge_bytes,
                        "efSearch": ef,
                        "recall_at_10": round(float(recall), 4),
                        "p50_ms": round(float(np.median(times)) * 1e3, 3),
                        "exact_ms": round(exact_s * 1e3, 2),
                        "speedup_vs_exact": round(exact_s / float(np.mean(times)), 1),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
