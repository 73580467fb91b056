"""Which faces an opt-out reaches: the reference photo's own matches, and then every
face that the person's photos found so far agree on.

One reference photo against one gallery face is a single distance. At a distance that
keeps false suppressions rare (a few per million unrelated faces), it misses most of a
person's other photos. :func:`reach` grows the person from the reference instead, as
average linkage grows a cluster:

1. faces closer than ``direct`` to the reference are the person;
2. then, repeatedly, the candidate (a face within ``radius`` of the reference) with the
   smallest root mean squared distance to the person so far (the reference and the
   faces already reached) joins, if that is under ``group_threshold`` and at least
   ``votes`` of them (or all, if fewer) are each closer than ``agree``;
3. it stops when no candidate passes.

A photo of the person far from the reference is reached through the photos between
them, but only when several of them agree, which is what keeps a lookalike out.
``radius`` bounds the growth, so it cannot chain into other people, and a photo
contributes at most one face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class ReachRule:
    """Distances (Euclidean, descriptor units) of :func:`reach`."""

    direct: float
    """A face this close to the reference is reached on its own."""
    group_threshold: float
    """A candidate's root mean squared distance to the person so far must be under it."""
    agree: float
    """Distance under which one of the person's faces agrees with a candidate."""
    radius: float
    """Faces further than this from the reference are never reached."""
    votes: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.direct <= self.radius or self.group_threshold <= 0 or self.agree <= 0:
            raise ValueError("need 0 < direct <= radius and positive group and agree distances")
        if self.votes < 1:
            raise ValueError("votes must be at least 1")


def reach(
    reference: np.ndarray, faces: np.ndarray, photo_ids: np.ndarray, rule: ReachRule
) -> np.ndarray:
    """``(n,)`` bool: which of the ``(n, dim)`` gallery ``faces`` (``photo_ids``: ``(n,)``
    int64) the opt-out with the ``(dim,)`` reference reaches."""
    x = np.asarray(faces, dtype=np.float64)
    photos = np.asarray(photo_ids, dtype=np.int64)
    if x.ndim != 2 or x.shape[0] != photos.shape[0]:
        raise ValueError("faces must be (n, dim) with one photo id each")
    n = x.shape[0]
    out = np.zeros(n, dtype=bool)
    if n == 0:
        return out
    r = np.asarray(reference, dtype=np.float64)
    d_ref = np.linalg.norm(x - r[None, :], axis=1)
    # Per candidate: sum of squared distances to the person so far, and agreeing faces.
    sq = d_ref**2
    agreeing = (d_ref < rule.agree).astype(np.int64)
    size = 1  # the reference
    open_ = d_ref < rule.radius
    taken: set[int] = set()

    def add(i: int) -> None:
        nonlocal size
        out[i] = True
        open_[i] = False
        taken.add(int(photos[i]))
        d = np.linalg.norm(x - x[i][None, :], axis=1)
        sq[:] += d**2
        agreeing[:] += d < rule.agree
        size += 1

    for i in np.argsort(d_ref):
        if d_ref[i] >= rule.direct:
            break
        if int(photos[i]) not in taken:
            add(int(i))
    while True:
        open_ &= ~np.isin(photos, list(taken))
        rms = np.sqrt(sq / size)
        ok = open_ & (rms < rule.group_threshold) & (agreeing >= min(rule.votes, size))
        if not ok.any():
            return out
        add(int(np.flatnonzero(ok)[np.argmin(rms[ok])]))


def joins(faces: np.ndarray, person: np.ndarray, rule: ReachRule) -> np.ndarray:
    """``(n,)`` bool: which of ``(n, dim)`` new faces pass :func:`reach`'s growth step
    against the ``(m, dim)`` faces of an opted-out person (the reference and the faces
    reached): root mean squared distance under ``group_threshold`` and at least
    ``min(votes, m)`` of them closer than ``agree``. ``radius`` does not apply here
    (there is no gallery to chain through), nor ``direct`` (the caller tests the
    reference)."""
    x = np.asarray(faces, dtype=np.float64)
    g = np.asarray(person, dtype=np.float64)
    if x.ndim != 2 or g.ndim != 2 or x.shape[1] != g.shape[1]:
        raise ValueError("faces and person must be (n, dim) and (m, dim)")
    d2 = (x**2).sum(1)[:, None] - 2.0 * x @ g.T + (g**2).sum(1)[None, :]
    d2 = np.maximum(d2, 0.0)
    rms = np.sqrt(d2.mean(axis=1))
    close = (d2 < rule.agree**2).sum(axis=1)
    ok: np.ndarray = (rms < rule.group_threshold) & (close >= min(rule.votes, g.shape[0]))
    return ok
