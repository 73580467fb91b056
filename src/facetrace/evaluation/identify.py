"""Open-set 1:N identification, as ISO/IEC 19795-1 and NIST FRTE define it.

A *gallery* holds enrolled faces; *mated* probes show someone enrolled,
*non-mated* probes someone who is not. Each probe is searched against the
whole gallery (exact nearest neighbours, Euclidean distance). Identity is the
image's parent folder name.

- rank-k identification rate: fraction of mated probes whose mate is among the
  k nearest gallery entries (closed-set, no threshold);
- FPIR(t): fraction of non-mated probes whose nearest gallery entry is closer
  than ``t`` (any candidate returned is a false positive);
- FNIR(t): fraction of mated probes whose mate is *not* the nearest entry at a
  distance below ``t`` (NIST's FNIR(N, T, R=1));
- FNIR at FPIR = x: ``t`` is chosen on the non-mated probes so that FPIR <= x
  (the largest such ``t``), and FNIR is measured at that ``t``.

Confidence intervals are 95% Wilson score intervals of the binomial
proportions, conditional on the threshold (they do not include the threshold's
own sampling error). With ``m`` non-mated probes, an FPIR target below ``1/m``
cannot be resolved: the threshold is then the nearest non-mated distance, the
measured FPIR is 0, and the report flags it.

Images without a face (after the describer's fallbacks): a gallery image is
left out of the gallery (counted); a mated probe counts as a miss at every
rank and threshold; a non-mated probe as a correct rejection.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facetrace.errors import UsageError
from facetrace.evaluation.metrics import threshold_at_far, wilson_interval
from facetrace.evaluation.pairs import describe_all
from facetrace.evaluation.variants import Describer

FPIRS = (1e-2, 1e-3)


def read_list(path: Path) -> list[str]:
    """Image paths, one per line, relative to the data folder (``#`` comments skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read list {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"list {path} is not UTF-8 text: {exc}") from exc
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def identity_of(rel: str) -> str:
    """The identity of an image: its parent folder's name."""
    parts = Path(rel).parts
    if len(parts) < 2:
        raise UsageError(f"{rel!r} is not inside an identity folder (NAME/file.jpg)")
    return parts[-2]


def _rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = wilson_interval(k, n)
    return {"value": k / n if n else None, "ci95": [round(lo, 6), round(hi, 6)], "k": k, "n": n}


@dataclass(frozen=True, slots=True)
class IdentifyReport:
    """Results of one open-set identification run; see the module docstring."""

    variant: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, **self.data}


def evaluate_identification(
    images_dir: Path,
    gallery: list[str],
    probes: list[str],
    nonmated: list[str],
    describer: Describer,
    *,
    ranks: tuple[int, ...] = (1, 5),
    variant: str = "",
) -> IdentifyReport:
    """Run the open-set protocol; see the module docstring."""
    if not gallery or not probes:
        raise UsageError("identification needs a gallery list and a probe list")
    start = time.perf_counter()
    described = describe_all(describer, images_dir, sorted(set(gallery + probes + nonmated)))
    counts = Counter(d.how.value for d in described.values())
    enrolled = [g for g in gallery if described[g].embedding is not None]
    if not enrolled:
        raise UsageError("no face was found in any gallery image")
    g_emb = np.stack([described[g].embedding for g in enrolled])  # type: ignore[misc]
    g_ids = np.array([identity_of(g) for g in enrolled])
    enrolled_ids = set(g_ids.tolist())
    mated = [p for p in probes if identity_of(p) in enrolled_ids]
    unmated_probes = len(probes) - len(mated)

    def search(items: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per item: distance to the nearest entry and its rank-sorted gallery order."""
        ok = [i for i, p in enumerate(items) if described[p].embedding is not None]
        dist = np.full((len(items), g_emb.shape[0]), np.inf)
        if ok:
            q = np.stack([described[items[i]].embedding for i in ok])  # type: ignore[misc]
            d2 = (q * q).sum(1)[:, None] + (g_emb * g_emb).sum(1)[None, :] - 2 * q @ g_emb.T
            dist[ok] = np.sqrt(np.maximum(d2, 0.0))
        return dist, np.argsort(dist, axis=1, kind="stable")

    m_dist, m_order = search(mated)
    n_dist, _ = search(nonmated)
    m_ids = np.array([identity_of(p) for p in mated])
    m_failed = np.isinf(m_dist).all(axis=1) if mated else np.zeros(0, dtype=bool)
    # rank (1-based) of the first gallery entry of the probe's identity
    hit = g_ids[m_order] == m_ids[:, None] if mated else np.zeros((0, 1), dtype=bool)
    mate_rank = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, np.iinfo(np.int64).max)
    mate_rank[m_failed] = np.iinfo(np.int64).max
    top1_dist = m_dist[np.arange(len(mated)), m_order[:, 0]] if mated else np.zeros(0)
    n_top1 = n_dist.min(axis=1) if nonmated else np.zeros(0)

    out: dict[str, Any] = {
        "gallery_size": len(enrolled),
        "gallery_images": len(gallery),
        "mated_probes": len(mated),
        "probes_of_unenrolled_people": unmated_probes,
        "nonmated_probes": len(nonmated),
        "faces_by": dict(counts),
        "failed": {
            "gallery": len(gallery) - len(enrolled),
            "mated_probes": int(m_failed.sum()),
            "nonmated_probes": int(sum(described[p].embedding is None for p in nonmated)),
        },
        "interval": "95% Wilson score interval, conditional on the threshold",
    }
    for r in ranks:
        out[f"rank{r}"] = _rate(int((mate_rank <= r).sum()), len(mated))
    out["fnir_at_fpir"] = {}
    for target in FPIRS:
        if not nonmated:
            break
        t = threshold_at_far(n_top1, target)
        fp = int((n_top1 < t).sum())
        miss = int((~((mate_rank == 1) & (top1_dist < t))).sum())
        out["fnir_at_fpir"][f"{target:g}"] = {
            "threshold": round(t, 6) if math.isfinite(t) else None,
            "fpir": _rate(fp, len(nonmated)),
            "fnir": _rate(miss, len(mated)),
            "resolved": target * len(nonmated) >= 1.0,
        }
    out["seconds"] = round(time.perf_counter() - start, 3)
    return IdentifyReport(variant or describer.key, out)
