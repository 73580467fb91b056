"""Raw FAISS at a million collected-gallery faces: the default IVF-PQ fast-scan
structure with the engine's kind of re-rank (numpy, exact, over the candidates)
against FAISS's own re-rank in C++ (IndexRefine over float or 8-bit vectors), and
the fast-scan kernels and candidate counts, each as recall@10 and single-query
speed over an exact scan, one thread, in the same run.

    .venv/bin/python scripts/sweep_ivf_refine.py [N]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import faiss
import numpy as np

from facetrace.evaluation.facelike import FaceLikeGenerator, GalleryShape, recall_at_k

K = 10
DIM = 128


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    faiss.omp_set_num_threads(1)
    gen = FaceLikeGenerator(DIM, 0, shape=GalleryShape.COLLECTED, model="mixture")
    data = gen.fill(np.empty((n, DIM), np.float32))
    probes = gen.queries(1000, n)
    _, truth = faiss.knn(probes, data, K)
    base = faiss.IndexIVFPQFastScan(faiss.IndexFlatL2(DIM), DIM, 1024, 64, 4)
    base.by_residual = False  # as the engine builds it
    sample = data[np.random.default_rng(0).choice(n, 100_000, replace=False)]
    base.train(sample)
    base.add(data)

    def timed(search: Callable[[np.ndarray], np.ndarray], m: int = 1000) -> tuple[float, float]:
        found = np.empty((m, K), np.int64)
        times = []
        for i in range(m):
            t = time.perf_counter()
            found[i] = search(probes[i : i + 1])
            times.append(time.perf_counter() - t)
        return recall_at_k(truth[:m], found), float(np.median(times)) * 1e3

    exact = []
    for i in range(40):
        t = time.perf_counter()
        faiss.knn(probes[i : i + 1], data, K)
        exact.append(time.perf_counter() - t)
    exact_ms = float(np.mean(exact)) * 1e3
    print(f"exact single query: {exact_ms:.1f} ms", flush=True)

    def numpy_rerank(nprobe: int, candidates: int) -> Callable[[np.ndarray], np.ndarray]:
        params = faiss.SearchParametersIVF()
        params.nprobe = nprobe

        def search(x: np.ndarray) -> np.ndarray:
            _, rows = base.search(x, candidates, params=params)
            rows = rows[0][rows[0] >= 0]
            d = ((data[rows] - x[0]) ** 2).sum(1)
            near = np.argpartition(d, K)[:K]
            return rows[near[np.argsort(d[near])]]

        return search

    def report(name: str, result: tuple[float, float]) -> None:
        recall, ms = result
        print(f"{name}: recall@10 {recall:.4f}, p50 {ms:.3f} ms, {exact_ms / ms:.1f}x", flush=True)

    for implem in (0, 12, 13, 14, 15):
        base.implem = implem
        report(f"numpy re-rank, fast-scan implem {implem}", timed(numpy_rerank(96, 200), 300))
    base.implem = 0
    for nprobe, candidates in ((96, 200), (96, 150), (96, 100), (88, 150), (112, 100)):
        report(
            f"numpy re-rank, nprobe {nprobe}, {candidates} candidates",
            timed(numpy_rerank(nprobe, candidates)),
        )
    for name, refine in (
        ("float", faiss.IndexFlatL2(DIM)),
        ("8-bit", faiss.IndexScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_8bit)),
    ):
        if not refine.is_trained:
            refine.train(sample)
        refine.add(data)
        refined = faiss.IndexRefine(base, refine)
        for k_factor in (20, 10):
            params = faiss.SearchParametersIVF()
            params.nprobe = 96
            rp = faiss.IndexRefineSearchParameters()
            rp.k_factor = k_factor
            rp.base_index_params = params
            report(
                f"IndexRefine over {name} vectors, nprobe 96, {k_factor * K} candidates",
                timed(lambda x, rp=rp, idx=refined: idx.search(x, K, params=rp)[1][0]),
            )


if __name__ == "__main__":
    main()
