"""Which faces an opt-out reaches: the reference photo's own matches, and the people
that several of the reference's close matches agree on.

One reference photo against one gallery face is a single distance; at a distance that
keeps false suppressions rare (a few per million unrelated faces) it misses most of a
person's other photos. :func:`reach` adds the person's *group*: the faces near the
reference are grouped tightly (average linkage at ``group_threshold``, faces of one
photo apart), and a group is reached when the reference is close to it on average
(root mean squared distance under ``group_threshold``) and at least ``votes`` of its
faces are each within ``group_threshold`` of the reference. Only faces within
``radius`` of the reference are ever considered, which guards against chaining into
other people through a group that holds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetrace.identity.cluster import Constraints, average_linkage


@dataclass(frozen=True, slots=True)
class ReachRule:
    """Distances (Euclidean, descriptor units) of :func:`reach`."""

    direct: float
    """A face this close to the reference is reached on its own."""
    group_threshold: float
    """Grouping distance of the faces near the reference, and the reference's
    root mean squared distance to a group under which the group is reached."""
    radius: float
    """Faces further than this from the reference are never reached."""
    votes: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.direct <= self.radius or self.group_threshold <= 0:
            raise ValueError("need 0 < direct <= radius and group_threshold > 0")


def reach(
    reference: np.ndarray, faces: np.ndarray, photo_ids: np.ndarray, rule: ReachRule
) -> np.ndarray:
    """``(n,)`` bool: which of the ``(n, dim)`` gallery ``faces`` (all within
    ``rule.radius`` of the ``(dim,)`` reference; ``photo_ids`` ``(n,)`` int64) the
    opt-out reaches."""
    x = np.asarray(faces, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != photo_ids.shape[0]:
        raise ValueError("faces must be (n, dim) with one photo id each")
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool)
    r = np.asarray(reference, dtype=np.float64)
    d = np.linalg.norm(x - r[None, :], axis=1)
    inside = d < rule.radius
    out = inside & (d < rule.direct)
    labels = average_linkage(
        x,
        rule.group_threshold,
        constraints=Constraints(
            photo=np.asarray(photo_ids, np.int64), pinned=np.full(n, -1, np.int64)
        ),
        votes=rule.votes,
    )
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if members.size < 2:
            continue
        close = int((d[members] < rule.group_threshold).sum())
        rms = float(np.sqrt((d[members] ** 2).mean()))
        if rms < rule.group_threshold and close >= min(rule.votes, members.size):
            out[members] = True
    result: np.ndarray = out & inside
    return result
