"""Does adding vectors to FAISS HNSW in chunks give a weaker graph than one ``add`` call?

Usage: python scripts/hnsw_chunked_build.py N CHUNK[,CHUNK...]
For each chunk size, builds IndexHNSWFlat (M 48, efConstruction 200, 2 threads) over N
face-like vectors by adding CHUNK rows at a time, and prints recall@10 of 1,000 probes at
efSearch 24-64 (low, where differences between graphs show).
"""

from __future__ import annotations

import sys
import time

import faiss
import numpy as np

from facetrace.evaluation.bench_index import _exact_topk
from facetrace.evaluation.facelike import FaceLikeGenerator, recall_at_k


def main() -> None:
    n = int(sys.argv[1])
    chunks = [int(x) for x in sys.argv[2].split(",")]
    gen = FaceLikeGenerator(128, 0)
    data = gen.fill(np.empty((n, 128), np.float32))
    q = gen.queries(1000, n)
    truth = _exact_topk(data, q, 10)
    for chunk in chunks:
        index = faiss.IndexHNSWFlat(128, 48)
        index.hnsw.efConstruction = 200
        faiss.omp_set_num_threads(2)
        t = time.perf_counter()
        for s in range(0, n, chunk):
            index.add(data[s : s + chunk])
        build_s = time.perf_counter() - t
        faiss.omp_set_num_threads(1)
        recalls = {}
        for ef in (24, 32, 48, 64):
            index.hnsw.efSearch = ef
            _, found = index.search(q, 10)
            recalls[ef] = round(recall_at_k(truth, found), 4)
        print(
            {"n": n, "chunk": chunk, "build_s": round(build_s), "recall_at_10": recalls}, flush=True
        )


if __name__ == "__main__":
    main()
