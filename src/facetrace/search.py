"""Probe descriptors -> k-NN -> ranked matches with provenance.

Scores: ``score`` is a similarity in [0, 1], a logistic of the distance centred
on the decision threshold (0.5 at the threshold, ~0.88 at threshold - 0.1).
It orders and reads easily; what a match is *worth* is its false-match rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from facetrace.index.base import NO_RESULT, VectorIndex
from facetrace.store.repository import Store
from facetrace.types import BBox, Match, ProbeFace

SCORE_SCALE = 0.05
"""Distance units over which the score's logistic goes from 0.73 to 0.27."""


def similarity(distance: float, threshold: float) -> float:
    """Similarity in [0, 1]: ``1 / (1 + exp((distance - threshold) / 0.05))``."""
    z = (distance - threshold) / SCORE_SCALE
    if z > 50:
        return 0.0
    return 1.0 / (1.0 + math.exp(z))


FalseMatchRate = Callable[[float], float]
"""Maps a distance to the chance a random stranger is at least this close."""


OVERFETCH = 4
"""Neighbours asked of the index per result wanted when some faces are hidden from the
searcher (other organisations' private sources). A search where more than three in
four near neighbours are hidden returns fewer than ``top_k`` matches."""


def rank_matches(
    *,
    index: VectorIndex,
    store: Store,
    locate: Callable[[str], str],
    probes: list[tuple[BBox, float, np.ndarray]],
    top_k: int,
    threshold: float,
    false_match_rate: FalseMatchRate | None = None,
    worst_group_false_match_rate: FalseMatchRate | None = None,
    exclude: Callable[[np.ndarray], np.ndarray] | None = None,
    visible_to_org: int | None = None,
    gallery_size: int | None = None,
) -> tuple[ProbeFace, ...]:
    """Search each probe face ``(bbox, quality, (dim,) embedding)``; best match first.

    ``locate`` maps a thumbnail's name to where it is found (a match's ``thumbnail``).

    ``false_match_rate`` and ``worst_group_false_match_rate`` map a distance to
    the calibrated rate over all impostor pairs and in the demographic group
    where the model errs most (None: not calibrated). ``exclude`` maps ``(n, dim)``
    gallery embeddings to an ``(n,)`` bool mask of matches to drop (opted-out
    people), applied before ``top_k`` is cut. ``visible_to_org``: keep only the faces
    that organisation sees, with only the sightings it sees (None: every face);
    ``gallery_size``: the faces searched, for expected false matches (default: the
    index's). Filtered neighbours are made up for by asking the index for more, as
    many whatever is filtered out, so the work does not depend on what is hidden.
    """
    if not probes:
        return ()
    queries = np.stack([p[2] for p in probes]).astype(np.float32)
    indexed = index.count()
    gallery = indexed if gallery_size is None else gallery_size
    # Ask for extra neighbours so that filtered ones do not shorten the list.
    extra = max(2 if exclude else 1, OVERFETCH if visible_to_org is not None else 1)
    k = max(1, min(top_k * extra, max(indexed, 1)))
    distances, ids = index.search(queries, k)
    wanted = sorted({int(i) for i in ids.ravel() if i != NO_RESULT})
    records = store.faces(wanted, visible_to_org)
    dropped: set[int] = set()
    if exclude is not None and records:
        dim = queries.shape[1]
        embs = store.embeddings(list(records), dim)
        keys = list(embs)
        if keys:
            mask = exclude(np.stack([embs[i] for i in keys]))
            dropped = {i for i, d in zip(keys, mask, strict=True) if d}
    out = []
    for (bbox, quality, _), row_d, row_i in zip(probes, distances, ids, strict=True):
        matches = []
        for dist, fid in zip(row_d, row_i, strict=True):
            rec = records.get(int(fid))
            if fid == NO_RESULT or rec is None or int(fid) in dropped:
                continue
            fmr = false_match_rate(float(dist)) if false_match_rate else None
            worst = (
                worst_group_false_match_rate(float(dist)) if worst_group_false_match_rate else None
            )
            matches.append(
                Match(
                    face_id=rec.id,
                    photo_id=rec.photo_id,
                    distance=float(dist),
                    score=similarity(float(dist), threshold),
                    bbox=rec.bbox,
                    provenance=rec.provenance,
                    thumbnail=locate(rec.thumbnail) if rec.thumbnail else None,
                    false_match_rate=fmr,
                    expected_false_matches=fmr * gallery if fmr is not None else None,
                    worst_group_false_match_rate=worst,
                )
            )
            if len(matches) >= top_k:
                break
        out.append(ProbeFace(bbox=bbox, quality=quality, matches=tuple(matches)))
    return tuple(out)
