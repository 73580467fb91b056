"""``facetrace bench index``: index throughput, latency, recall and memory on face-like data.

Embeddings come from :class:`~facetrace.evaluation.facelike.FaceLikeGenerator`, a model
fitted to real dlib descriptors of lfw-dev; on the production graph, at equal size and
identity structure, it misses true neighbours about as often as real faces
(``scripts/index_fidelity.py``, checked by ``tests/evaluation/test_facelike.py``).

The gallery's shape (:class:`~facetrace.evaluation.facelike.GalleryShape`) is by default
that of a collected gallery: photos per person follow LFW's heavy tail (70 % of people
once), and half the queries are new photos of people not in the gallery, half new photos
of enrolled people drawn by person. ``enrolled`` is the earlier sampling (about four
photos of everyone, 80 % enrolled probes drawn by face). Ground truth is exact search
on the same data. Exact throughput is measured in the same run with FAISS's exhaustive
L2 search (``faiss.knn``), single-threaded for single queries, like the index under
test; its single queries alternate with the index's in 10 blocks, so a change of load
on a shared machine hits both alike.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facetrace.config import IndexBackend, Settings
from facetrace.evaluation.facelike import (
    CHUNK,
    FaceLikeGenerator,
    GalleryShape,
    Model,
    recall_at_k,
)
from facetrace.index.base import FloatArray, IdArray

_TIMING_BLOCKS = 10  # single-query timing alternates index and exact search this often


@dataclass(frozen=True)
class BenchResult:
    """What ``bench index`` reports; times in milliseconds or seconds as named.

    ``single_*``: one query per call (one OpenMP thread); ``batch_*``: ``batch_size``
    queries per call. ``qps_*`` are queries per second. ``recall_at_k``: fraction of the
    exact top-k ids found in the returned top-k; ``recall_at_10_strangers`` and
    ``recall_at_10_enrolled`` split it by probe (``strangers`` of the ``queries`` probes
    are of people not in the gallery). ``speedup_vs_exact``: ``qps_single`` over
    exhaustive search's single-query rate, measured in the same run (``exact_qps_*``).
    ``ram_bytes_per_face``: growth of anonymous resident memory while building and
    querying, over ``n``; ``index_resident_bytes_per_face``: the backend's own estimate;
    ``rss_anon_bytes``: the process's anonymous memory afterwards (Python and libraries
    included); ``peak_rss_bytes``: peak resident set including memory-mapped files (the
    generated data set too), so an upper bound. ``disk_bytes_per_face``: saved index files.
    ``huge_page_bytes``: index memory backed by 2 MiB pages (FAISS; 0 elsewhere).
    """

    backend: str
    structure: str
    face_model: str
    gallery: str
    n: int
    dim: int
    k: int
    queries: int
    strangers: int
    threads: int
    build_s: float
    single_p50_ms: float
    single_p99_ms: float
    batch_size: int
    batch_p50_ms: float
    batch_p99_ms: float
    qps_single: float
    qps_batched: float
    recall_at_1: float
    recall_at_10: float
    recall_at_10_strangers: float
    recall_at_10_enrolled: float
    exact_qps_single: float
    exact_qps_batched: float
    speedup_vs_exact: float
    speedup_batched_vs_exact: float
    ram_bytes_per_face: float
    index_resident_bytes_per_face: float
    rss_anon_bytes: int
    peak_rss_bytes: int
    disk_bytes_per_face: float
    huge_page_bytes: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _proc_status(field: str) -> int:
    """A memory field of /proc/self/status, in bytes (``RssAnon``: heap, not page cache;
    ``VmHWM``: peak resident set, *including* memory-mapped file pages)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _exact_topk(data: FloatArray, queries: FloatArray, k: int, chunk: int = 1_000_000) -> IdArray:
    """Exact top-k ids (ids = row numbers) by exhaustive search over ``data`` in chunks."""
    import faiss

    best_d = np.full((queries.shape[0], k), np.inf, dtype=np.float32)
    best_i = np.full((queries.shape[0], k), -1, dtype=np.int64)
    for s in range(0, data.shape[0], chunk):
        d, i = faiss.knn(queries, np.ascontiguousarray(data[s : s + chunk]), k)
        d_all = np.concatenate([best_d, d], axis=1)
        i_all = np.concatenate([best_i, i + s], axis=1)
        order = np.argsort(d_all, axis=1, kind="stable")[:, :k]
        best_d = np.take_along_axis(d_all, order, axis=1)
        best_i = np.take_along_axis(i_all, order, axis=1)
    return best_i


def _timed_exact(data: FloatArray, probe: FloatArray, k: int) -> float:
    """Seconds for one exact single-query search on one OpenMP thread."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        t = time.perf_counter()
        _exact_topk(data, probe, k)
        return time.perf_counter() - t
    finally:
        faiss.omp_set_num_threads(before)


def run_bench(
    settings: Settings,
    n: int,
    backend: IndexBackend | None = None,
    dim: int = 128,
    queries: int = 1000,
    k: int = 10,
    exact_queries: int = 50,
    batch_size: int = 100,
    seed: int = 0,
    workdir: Path | None = None,
    model: Model = "mixture",
    shape: GalleryShape = GalleryShape.COLLECTED,
) -> BenchResult:
    """Build an index of ``n`` face-like vectors, query it, and compare with exact search.

    The index lives in a temporary ``home`` under ``workdir`` (deleted afterwards); a
    Milvus index uses ``settings.milvus_uri`` and a throwaway collection.
    """
    import faiss

    from facetrace.index.factory import open_index

    backend = backend or settings.index_backend
    base = Path(tempfile.mkdtemp(prefix="bench-index-", dir=workdir))
    try:
        gen = FaceLikeGenerator(dim, seed, shape=shape, model=model)
        data = gen.fill(np.memmap(base / "data.f32", np.float32, "w+", shape=(n, dim)))
        probes = gen.queries(queries, n)
        strangers = round(queries * shape.stranger_fraction)  # the first rows of probes
        truth = _exact_topk(data, probes, k)

        bench_settings = settings.model_copy(
            update={
                "home": base / "home",
                "index_backend": backend,
                "milvus_collection": f"facetrace_bench_{os.getpid()}",
            }
        )
        rss0 = _proc_status("RssAnon")
        t0 = time.perf_counter()
        index = open_index(bench_settings, dim, name="bench")
        try:
            for s in range(0, n, CHUNK):
                stop = min(n, s + CHUNK)
                index.add(np.arange(s, stop, dtype=np.int64), np.asarray(data[s:stop]))
            index.wait_until_built()
            build_s = time.perf_counter() - t0
            index.save()

            # Single queries in blocks, each followed by a share of the exact baseline's
            # single queries, so both see the same load on a shared machine (blocks, not
            # one-by-one: each exact scan flushes the CPU caches the index lives in).
            m = min(exact_queries, queries)
            blocks = min(_TIMING_BLOCKS, m)
            single = np.empty(queries)
            exact_times: list[float] = []
            found = np.empty((queries, k), dtype=np.int64)
            for b in range(blocks):
                for i in range(b * queries // blocks, (b + 1) * queries // blocks):
                    t = time.perf_counter()
                    _, found[i : i + 1] = index.search(probes[i : i + 1], k)
                    single[i] = time.perf_counter() - t
                for i in range(b * m // blocks, (b + 1) * m // blocks):
                    exact_times.append(_timed_exact(data, probes[i : i + 1], k))
            batches = []
            t_all = time.perf_counter()
            for s in range(0, queries, batch_size):
                t = time.perf_counter()
                index.search(probes[s : s + batch_size], k)
                batches.append(time.perf_counter() - t)
            batched_s = time.perf_counter() - t_all
            stats = index.stats()
            rss1 = _proc_status("RssAnon")
            disk = int(stats.get("disk_bytes", 0))  # type: ignore[call-overload]
            resident = int(stats.get("resident_bytes", 0))  # type: ignore[call-overload]
            structure = str(stats.get("structure", backend))
            huge = int(stats.get("huge_page_bytes", 0))  # type: ignore[call-overload]
            if backend is IndexBackend.MILVUS:
                index.remove(index.ids())  # leave nothing behind on a shared server
        finally:
            index.close()

        recall1 = float(np.mean(found[:, 0] == truth[:, 0]))
        recall10 = recall_at_k(truth, found)
        by_probe = [
            round(recall_at_k(truth[part], found[part]), 4) if len(truth[part]) else float("nan")
            for part in (slice(0, strangers), slice(strangers, None))
        ]

        # Exact search in the same run: single queries (above), then batched.
        exact_single = float(np.mean(exact_times))
        before = faiss.omp_get_max_threads()
        t = time.perf_counter()
        _exact_topk(data, probes[: max(m, batch_size)], k)
        exact_batched = (time.perf_counter() - t) / max(m, batch_size)

        qps_single = 1.0 / float(single.mean())
        qps_batched = queries / batched_s
        return BenchResult(
            backend=backend.value,
            structure=structure,
            face_model=model,
            gallery=shape.value,
            n=n,
            dim=dim,
            k=k,
            queries=queries,
            strangers=strangers,
            threads=before,
            build_s=round(build_s, 2),
            single_p50_ms=round(float(np.percentile(single, 50)) * 1e3, 4),
            single_p99_ms=round(float(np.percentile(single, 99)) * 1e3, 4),
            batch_size=batch_size,
            batch_p50_ms=round(float(np.percentile(batches, 50)) * 1e3, 3),
            batch_p99_ms=round(float(np.percentile(batches, 99)) * 1e3, 3),
            qps_single=round(qps_single, 1),
            qps_batched=round(qps_batched, 1),
            recall_at_1=round(recall1, 4),
            recall_at_10=round(recall10, 4),
            recall_at_10_strangers=by_probe[0],
            recall_at_10_enrolled=by_probe[1],
            exact_qps_single=round(1.0 / exact_single, 2),
            exact_qps_batched=round(1.0 / exact_batched, 2),
            speedup_vs_exact=round(qps_single * exact_single, 1),
            speedup_batched_vs_exact=round(qps_batched * exact_batched, 1),
            ram_bytes_per_face=round(max(rss1 - rss0, 0) / n, 1),
            index_resident_bytes_per_face=round(resident / n, 1),
            rss_anon_bytes=rss1,
            peak_rss_bytes=_proc_status("VmHWM"),
            disk_bytes_per_face=round(disk / n, 1),
            huge_page_bytes=huge,
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
