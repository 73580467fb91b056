"""Opt-out suppression: keep the people who opted out out of ingest and search.

It needs the store (the templates), the settings and the model, not the engine, so the
engine and the pipeline use it without depending on the opt-out verb that made the
templates (:mod:`facetrace.governance.optout`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import numpy as np
from sqlalchemy import Engine

from facetrace.config import Settings
from facetrace.governance.repository import GovernanceStore, TemplateSet
from facetrace.identity.reach import ReachRule, joins
from facetrace.store.repository import Store


class Suppression:
    """Callable ``(n, dim) float32 -> (n,) bool``: True where a face is the person of an
    opt-out: within ``threshold`` (Euclidean) of an opt-out's reference photo, or, with
    a ``rule``, joining the faces that opt-out reached (:func:`facetrace.identity.reach.joins`,
    so later photos get the same reach as the gallery's)."""

    def __init__(self, templates: TemplateSet, threshold: float, rule: ReachRule | None = None):
        if templates.embeddings.ndim != 2 or templates.embeddings.shape[0] == 0:
            raise ValueError("templates must be a non-empty (m, dim) array")
        self.templates = templates
        self.references = np.ascontiguousarray(
            templates.embeddings[templates.reference], dtype=np.float64
        )
        self.threshold = float(threshold)
        self.rule = rule
        self._r2 = (self.references**2).sum(1)
        # The faces of each opt-out that reached some (where the growth step applies),
        # split once here: the suppressor runs on every ingest batch and search.
        groups, counts = np.unique(templates.groups, return_counts=True)
        self._grown = [
            templates.embeddings[templates.groups == g]
            for g, c in zip(groups, counts, strict=True)
            if c > 1
        ]

    def min_distance(self, embeddings: np.ndarray) -> np.ndarray:
        """``(n,)`` float64: each face's distance to its nearest reference photo."""
        e = np.asarray(embeddings, dtype=np.float64)
        if e.ndim != 2 or e.shape[1] != self.references.shape[1]:
            raise ValueError(f"embeddings must be (n, {self.references.shape[1]})")
        d2 = (e**2).sum(1)[:, None] - 2.0 * e @ self.references.T + self._r2[None, :]
        out: np.ndarray = np.sqrt(np.maximum(d2, 0.0).min(axis=1))
        return out

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        if len(embeddings) == 0:
            return np.zeros((0,), dtype=bool)
        hit = self.min_distance(embeddings) < self.threshold
        if self.rule is not None:
            e = np.asarray(embeddings, dtype=np.float64)
            for person in self._grown:
                rest = ~hit
                if rest.any():
                    hit[rest] = joins(e[rest], person, self.rule)
        return hit


def reach_rule(settings: Settings) -> ReachRule:
    """The opt-out reach of ``settings``."""
    return ReachRule(
        direct=settings.optout_threshold,
        group_threshold=settings.optout_group_threshold,
        agree=settings.optout_agree,
        radius=max(settings.optout_radius, settings.optout_threshold),
        votes=settings.optout_votes,
    )


def suppressor(
    db: Engine, settings: Settings, model_id: str, dim: int
) -> Callable[[np.ndarray], np.ndarray] | None:
    """The opt-out suppressor for ``model_id``'s faces, or None when nobody opted out."""
    templates = GovernanceStore(db).templates(model_id, dim)
    if templates.embeddings.shape[0] == 0:
        return None
    return Suppression(templates, settings.optout_suppress_threshold, reach_rule(settings))


SUPPRESSION_LOCK = "suppression"
"""Held alone by an opt-out while it finds, deletes and records a person, and shared by
each ingest commit while it checks a photo against the templates and stores it."""


class LiveSuppression:
    """The suppressor an ingest uses, kept current across processes and nodes: each
    commit holds :data:`SUPPRESSION_LOCK` shared (:meth:`committing`) and asks for the
    suppressor (:meth:`current`), rebuilt when an opt-out changed the templates. An
    opt-out holds the lock alone, so a photo is either stored before the opt-out looks
    for the person (and found by it) or checked against its templates."""

    def __init__(self, store: Store, settings: Settings, model_id: str, dim: int) -> None:
        self.store = store
        self.settings = settings
        self.model_id = model_id
        self.dim = dim
        self._version: tuple[int, str] | None = None
        self._current: Callable[[np.ndarray], np.ndarray] | None = None

    def committing(self) -> AbstractContextManager[bool]:
        return self.store.shared(SUPPRESSION_LOCK)

    def current(self) -> Callable[[np.ndarray], np.ndarray] | None:
        version = GovernanceStore(self.store.engine).template_version(self.model_id)
        if version != self._version:
            self._current = suppressor(self.store.engine, self.settings, self.model_id, self.dim)
            self._version = version
        return self._current
