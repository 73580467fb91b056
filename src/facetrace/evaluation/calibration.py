"""Calibration: from a descriptor distance to the false-match rate it carries.

A :class:`Calibration` is measured per embedding model (``model_id``) on a large
set of *impostor* comparisons (faces of different people): ``FMR(d)`` is the
fraction of impostor pairs whose distance is ``<= d``, i.e. the chance that a
random stranger's face comes at least this close. It also holds ``FNMR(d)``,
the fraction of genuine (same-person) pairs at distance ``>= d``.

Tables live in two places, the first found wins:

1. ``<settings.home>/calibration/calibration_<model>.json``, written by
   ``facetrace eval calibrate`` (for an ONNX model, or to re-measure dlib's);
2. ``facetrace/data/calibration_<model>.json`` shipped in the package (dlib's
   ResNet, measured on lfw-dev; see ``scripts/calibrate_lfw.sh``).

Without a table a model has no false-match rates (``None``), and its decision
threshold must be given explicitly (``FACETRACE_MATCH_THRESHOLD``).

Interpolation: ``log(FMR)`` is linear in distance between table points; below
the smallest measured impostor distance the rate is reported as ``1 / n`` of
the impostor pairs, an upper bound (the table cannot resolve lower rates).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facetrace.config import FmrScope, Settings
from facetrace.errors import ConfigError, UsageError
from facetrace.store.blobs import CALIBRATION, BlobStore

FORMAT_VERSION = 1
MIN_GROUP_ERRORS = 10
"""A group's false-match rate counts as measured when it rests on at least this many
false matches (or on enough pairs for the target rate to give this many)."""


def table_name(model_id: str) -> str:
    """File name of a model's table: ``calibration_<model_id made file-safe>.json``."""
    return "calibration_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", model_id) + ".json"


@dataclass(frozen=True, slots=True)
class Calibration:
    """Distance -> false-match rate for one model.

    ``distances``: ``(m,)`` float64 ascending; ``fmr``: ``(m,)`` the impostor
    fraction at distance ``<= distances[i]`` (positive, ascending); ``fnmr``:
    ``(m,)`` the genuine fraction at distance ``>= distances[i]``.
    """

    model_id: str
    distances: np.ndarray
    fmr: np.ndarray
    fnmr: np.ndarray
    impostor_pairs: int
    genuine_pairs: int
    dataset: str = ""
    recipe: str = ""
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    worst_group: Calibration | None = None
    """Distance -> the highest same-group FMR among demographic groups (written by
    ``facetrace eval demographics --calibrate``); None when not measured."""

    @property
    def min_rate(self) -> float:
        """The smallest rate this table resolves: one impostor pair in ``impostor_pairs``."""
        return 1.0 / self.impostor_pairs

    def false_match_rate(self, distance: float) -> float:
        """FMR at ``distance``: fraction of impostor pairs at most this far apart.

        Never below :attr:`min_rate` (an upper bound there); 1.0 beyond the table.
        """
        if not math.isfinite(distance) or distance >= self.distances[-1]:
            return 1.0
        if distance < self.distances[0]:
            return self.min_rate
        log = np.interp(distance, self.distances, np.log(self.fmr))
        return float(max(math.exp(float(log)), self.min_rate))

    def false_non_match_rate(self, distance: float) -> float:
        """FNMR at ``distance``: fraction of genuine pairs at least this far apart."""
        return float(np.interp(distance, self.distances, self.fnmr, left=1.0, right=0.0))

    def threshold_at(self, fmr: float) -> float:
        """The distance at which FMR reaches ``fmr``: accept ``distance < threshold``.

        Raises ConfigError if ``fmr`` is below what the table resolves.
        """
        if not 0 < fmr < 1:
            raise ConfigError(f"a false-match rate must be in (0, 1), got {fmr}")
        if fmr < self.fmr[0]:
            raise ConfigError(
                f"FMR {fmr:g} is below what the {self.model_id} calibration resolves "
                f"({self.fmr[0]:.2g}, from {self.impostor_pairs} impostor pairs)"
            )
        return float(np.interp(math.log(fmr), np.log(self.fmr), self.distances))

    def with_worst_group(self, curve: Calibration | None) -> Calibration:
        """A copy of this table carrying ``curve`` as its worst-group curve."""
        return dataclasses.replace(self, worst_group=curve)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "format": FORMAT_VERSION,
            "model_id": self.model_id,
            "dataset": self.dataset,
            "recipe": self.recipe,
            "command": self.command,
            "impostor_pairs": self.impostor_pairs,
            "genuine_pairs": self.genuine_pairs,
            "extra": self.extra,
            "distances": [round(float(d), 6) for d in self.distances],
            "fmr": [float(f"{v:.6g}") for v in self.fmr],
            "fnmr": [round(float(v), 6) for v in self.fnmr],
        }
        if self.worst_group is not None:
            data["worst_group"] = self.worst_group.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        if data.get("format") != FORMAT_VERSION:
            raise ConfigError(f"calibration table format {data.get('format')!r} is not supported")
        d = np.asarray(data["distances"], dtype=np.float64)
        f = np.asarray(data["fmr"], dtype=np.float64)
        g = np.asarray(data["fnmr"], dtype=np.float64)
        if not (d.ndim == 1 and d.shape == f.shape == g.shape and d.size >= 2):
            raise ConfigError("calibration table arrays must be 1-D, of equal length >= 2")
        if np.any(np.diff(d) <= 0) or np.any(np.diff(f) < 0) or np.any(f <= 0):
            raise ConfigError("calibration table must ascend in distance and rate")
        return cls(
            model_id=str(data["model_id"]),
            distances=d,
            fmr=f,
            fnmr=g,
            impostor_pairs=int(data["impostor_pairs"]),
            genuine_pairs=int(data["genuine_pairs"]),
            dataset=str(data.get("dataset", "")),
            recipe=str(data.get("recipe", "")),
            command=str(data.get("command", "")),
            extra=dict(data.get("extra", {})),
            worst_group=cls.from_dict(data["worst_group"]) if data.get("worst_group") else None,
        )

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> Calibration:
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot read calibration table {path}: {exc}") from exc


def impostor_genuine_distances(
    embeddings: npt.ArrayLike, identities: list[str], block: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """All cross-identity (impostor) and same-identity (genuine) pair distances.

    ``embeddings``: ``(n, d)`` float32, one per face; ``identities``: ``n`` labels.
    Returns two float32 arrays (each unordered pair once).
    """
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != len(identities):
        raise ValueError("embeddings must be (n, d) with one identity per row")
    labels = np.unique(np.asarray(identities), return_inverse=True)[1]
    sq = (x * x).sum(axis=1)
    imp: list[np.ndarray] = []
    gen: list[np.ndarray] = []
    n = x.shape[0]
    for start in range(0, n, block):
        stop = min(n, start + block)
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * (x[start:stop] @ x.T)
        d = np.sqrt(np.maximum(d2, 0.0))
        rows = np.arange(start, stop)[:, None]
        upper = np.arange(n)[None, :] > rows
        same = labels[start:stop, None] == labels[None, :]
        imp.append(d[upper & ~same].astype(np.float32))
        gen.append(d[upper & same].astype(np.float32))
    return np.concatenate(imp), np.concatenate(gen)


def build_calibration(
    model_id: str,
    impostor: npt.ArrayLike,
    genuine: npt.ArrayLike,
    *,
    points: int = 400,
    dataset: str = "",
    recipe: str = "",
    command: str = "",
) -> Calibration:
    """Tabulate FMR(d) from impostor distances at ``points`` log-spaced rates.

    Table point ``i`` is the ``k_i``-th smallest impostor distance with rate
    ``k_i / n``, ``k_i`` log-spaced from 1 to ``n``; FNMR from the genuine
    distances at the same points.
    """
    imp = np.sort(np.asarray(impostor, dtype=np.float64))
    gen = np.sort(np.asarray(genuine, dtype=np.float64))
    if imp.size < 100:
        raise UsageError(f"calibration needs at least 100 impostor pairs, got {imp.size}")
    ks = np.unique(np.round(np.geomspace(1, imp.size, points)).astype(np.int64))
    d = imp[ks - 1]
    # Keep the last k of runs of equal distances: FMR(d) counts all pairs <= d.
    keep = np.append(np.diff(d) > 0, True)
    d, ks = d[keep], ks[keep]
    fmr = ks / imp.size
    fnmr = 1.0 - np.searchsorted(gen, d, side="left") / gen.size if gen.size else np.zeros_like(d)
    return Calibration(
        model_id=model_id,
        distances=d,
        fmr=fmr,
        fnmr=fnmr,
        impostor_pairs=int(imp.size),
        genuine_pairs=int(gen.size),
        dataset=dataset,
        recipe=recipe,
        command=command,
    )


def user_table_path(home: Path, model_id: str) -> Path:
    """Where galleries made before the blob store kept a model's table (read still)."""
    return home / CALIBRATION / table_name(model_id)


def table_blob(model_id: str) -> str:
    """The blob name of a gallery's own table for ``model_id``."""
    return f"{CALIBRATION}/{table_name(model_id)}"


def save_calibration(table: Calibration, blobs: BlobStore) -> str:
    """Make ``table`` the gallery's own for its model, where every node reads it (the
    blob store: the database with PostgreSQL); returns where it is."""
    name = table_blob(table.model_id)
    blobs.put({name: (json.dumps(table.to_dict(), indent=1) + "\n").encode()})
    return blobs.locate(name)


def load_calibration(
    model_id: str, home: Path | None = None, blobs: BlobStore | None = None
) -> Calibration | None:
    """The table for ``model_id``: the gallery's own (in ``blobs``, else in an older
    gallery's ``home``), else the packaged one, else None."""
    if blobs is not None:
        data = blobs.get(table_blob(model_id))
        if data is not None:
            try:
                return Calibration.from_dict(json.loads(data))
            except (ValueError, KeyError, TypeError) as exc:
                where = blobs.locate(table_blob(model_id))
                raise ConfigError(f"cannot read calibration table {where}: {exc}") from exc
    if home is not None:
        path = user_table_path(home, model_id)
        if path.is_file():
            return Calibration.load(path)
    shipped = resources.files("facetrace").joinpath("data", table_name(model_id))
    if shipped.is_file():
        try:
            return Calibration.from_dict(json.loads(shipped.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"the packaged calibration for {model_id} is unreadable") from exc
    return None


def decision_threshold(settings: Settings, calibration: Calibration | None) -> float:
    """The distance under which two faces count as one person.

    ``settings.match_threshold`` when set (an explicit override); else the
    distance at which the model's calibrated FMR equals ``settings.match_fmr``;
    with ``settings.match_fmr_scope`` = ``worst-group`` and a table that carries a
    worst-group curve, the smaller of that and the distance at which the
    worst-measured demographic group's same-group FMR equals ``match_fmr``.
    Raises ConfigError for a model without a table and without an override.
    """
    if settings.match_threshold is not None:
        return settings.match_threshold
    if calibration is None:
        raise ConfigError(
            "this model has no calibration table, so no threshold can be set at "
            f"FMR {settings.match_fmr:g}; run 'facetrace eval calibrate' or set "
            "FACETRACE_MATCH_THRESHOLD"
        )
    threshold = calibration.threshold_at(settings.match_fmr)
    worst = calibration.worst_group
    if settings.match_fmr_scope is FmrScope.WORST_GROUP and worst is not None:
        floor = MIN_GROUP_ERRORS / worst.impostor_pairs
        if settings.match_fmr < floor:
            raise ConfigError(
                f"FMR {settings.match_fmr:g} is below what the worst-group curve resolves "
                f"({floor:.2g}: {MIN_GROUP_ERRORS} false matches among the "
                f"{worst.impostor_pairs} pairs of its smallest group); measure a larger "
                "labelled set or set FACETRACE_MATCH_FMR_SCOPE=overall"
            )
        threshold = min(threshold, worst.threshold_at(settings.match_fmr))
    return threshold
