"""``bench search``: probe photo to ranked matches, end to end, on a large gallery.

The gallery is ``n`` synthetic face-like descriptors (see
:class:`~facetrace.evaluation.bench_index.FaceLikeGenerator`) written straight
into a real store (one photo, sighting and face row each) plus the real photos
given, so the search exercises everything a user's search does: safe decoding,
detection, embedding, the default index, the store lookups for provenance and
the audit write. Reports build times and search latency percentiles.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from facetrace.config import Settings
from facetrace.evaluation.facelike import FaceLikeGenerator
from facetrace.store import schema

CHUNK = 50_000


def _bulk_faces(engine: Any, n: int, source_id: int, seed: int) -> None:
    """Insert ``n`` synthetic photos with one face each, in chunks, ids ``1..n``."""
    now = datetime.now(UTC)
    model_id = engine.analyzer.model_id
    landmarks = np.zeros((5, 2), np.float32).tobytes()
    gen = FaceLikeGenerator(engine.analyzer.embedder.dim, seed)
    with engine.store.engine.begin() as conn:
        for ids, vecs in gen.gallery(n, batch=CHUNK):
            pids = [int(i) + 1 for i in ids]
            conn.execute(
                schema.photos.insert(),
                [
                    {
                        "id": p,
                        "sha256": f"{p:064x}",
                        "width": 250,
                        "height": 250,
                        "format": "JPEG",
                        "byte_size": 0,
                        "created_at": now,
                    }
                    for p in pids
                ],
            )
            conn.execute(
                schema.sightings.insert(),
                [
                    {
                        "photo_id": p,
                        "source_id": source_id,
                        "origin": f"synthetic://{p}",
                        "collected_at": now,
                    }
                    for p in pids
                ],
            )
            conn.execute(
                schema.faces.insert(),
                [
                    {
                        "id": p,
                        "photo_id": p,
                        "left": 50,
                        "top": 50,
                        "right": 150,
                        "bottom": 150,
                        "confidence": 1.0,
                        "quality": 1.0,
                        "landmarks": landmarks,
                        "model_id": model_id,
                        "embedding": v.tobytes(),
                        "created_at": now,
                    }
                    for p, v in zip(pids, vecs, strict=True)
                ],
            )


@dataclass(frozen=True, slots=True)
class SyntheticGallery:
    """An open engine on a built gallery and what building it took, in seconds."""

    engine: Any
    store_build_s: float
    index_build_s: float


@contextmanager
def synthetic_gallery(
    settings: Settings, n: int, gallery_photos: Sequence[Path] = (), seed: int = 0
) -> Iterator[SyntheticGallery]:
    """Fill the (empty) gallery in ``settings.home`` with ``n`` synthetic faces (photo and
    face ids ``1..n``, origins ``synthetic://<id>``) plus ``gallery_photos`` (source
    ``bench``), and yield an engine on it with every face indexed; closed on exit."""
    from facetrace.app import FaceTrace

    t0 = time.perf_counter()
    with FaceTrace.open(settings) as engine:
        source = engine.add_source("bench", lawful_basis="benchmark")
        _bulk_faces(engine, n, source.id, seed)
        store_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    with FaceTrace.open(settings) as engine:  # reconcile indexes every stored face
        wait = getattr(engine.index, "wait_until_built", None)
        if callable(wait):
            wait()
        index_s = time.perf_counter() - t1
        if gallery_photos:
            engine.ingest(list(gallery_photos), source="bench", workers=1)
        yield SyntheticGallery(engine, store_s, index_s)


def bench_search(
    settings: Settings,
    n: int,
    probe: Path,
    gallery_photos: Sequence[Path] = (),
    repeats: int = 10,
    seed: int = 0,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Build an ``n``-face gallery (plus ``gallery_photos``) and time searches of ``probe``."""
    with tempfile.TemporaryDirectory(prefix="bench-search-", dir=workdir) as tmp:
        s = settings.model_copy(update={"home": Path(tmp), "database_url": None})
        with synthetic_gallery(s, n, gallery_photos, seed) as built:
            engine = built.engine
            engine.search(probe, case_id="bench", reason="warm-up")
            times = []
            result = None
            for _ in range(repeats):
                t = time.perf_counter()
                result = engine.search(probe, case_id="bench", reason="benchmark")
                times.append(time.perf_counter() - t)
            stats = engine.stats()
            best = result.faces[0].matches[0] if result and result.faces else None
    times.sort()
    return {
        "n_synthetic": n,
        "gallery_faces": stats.faces,
        "indexed": stats.indexed,
        "backend": str(s.index_backend),
        "store_build_s": round(built.store_build_s, 1),
        "index_build_s": round(built.index_build_s, 1),
        "search_p50_s": round(statistics.median(times), 4),
        "search_max_s": round(times[-1], 4),
        "repeats": repeats,
        "best_match_origin": best.provenance[0].origin if best else None,
        "best_match_distance": round(best.distance, 4) if best else None,
    }
