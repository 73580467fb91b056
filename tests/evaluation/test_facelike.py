"""The face-like generator behind ``bench index``: reproducible, and faithful to real faces.

The stats file stores, for the real lfw-dev descriptors the model was fitted to, their
identity sizes and how hard they are for nearest-neighbour search (``fidelity``). Drawing
the same identity sizes from the generator is compared with them and with the earlier
single-Gaussian model.
"""

from __future__ import annotations

import numpy as np
import pytest

from facetrace.evaluation.facelike import (
    FIDELITY_EF,
    STATS_FILE,
    FaceLikeGenerator,
    Model,
    fidelity,
)


@pytest.fixture(scope="module")
def real() -> tuple[np.ndarray, dict[str, float]]:
    with np.load(STATS_FILE) as stats:
        keys = [str(k) for k in stats["fidelity_keys"]]
        return stats["fidelity_sizes"].astype(np.int64), dict(
            zip(keys, stats["fidelity_real"].tolist(), strict=True)
        )


def _mean_fidelity(model: Model, sizes: np.ndarray) -> dict[str, float]:
    runs = [fidelity(FaceLikeGenerator(seed=seed, model=model).like(sizes)) for seed in range(3)]
    return {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}


def test_mixture_is_closer_to_real_faces_and_never_easier(real: tuple) -> None:
    """Measured: real lid20 16.2, weak-HNSW recall 0.65 at efSearch 10; mixture 18.2 and
    0.56; single Gaussian 19.6 and 0.49 (3 draws each of lfw-dev's identity sizes)."""
    sizes, want = real
    mixture, gaussian = _mean_fidelity("mixture", sizes), _mean_fidelity("gaussian", sizes)
    keys = ["lid20", "contrast"] + [f"hnsw_ef{ef}" for ef in FIDELITY_EF]
    for key in keys:  # the fitted mixture is the nearer of the two models everywhere
        assert abs(mixture[key] - want[key]) < abs(gaussian[key] - want[key]), key
    # ... and errs on the hard side: an index benchmarked on it does not look better
    # than it would on real faces.
    assert mixture["lid20"] > want["lid20"] - 0.5
    for ef in FIDELITY_EF:
        assert mixture[f"hnsw_ef{ef}"] < want[f"hnsw_ef{ef}"] + 0.02


def test_same_seed_same_data_whatever_the_chunking() -> None:
    gen = FaceLikeGenerator(seed=4)
    whole = gen.fill(np.empty((70_000, 128), np.float32))
    parts = np.concatenate([v for _, v in FaceLikeGenerator(seed=4).gallery(70_000, 9_999)])
    np.testing.assert_array_equal(whole, parts)
    assert not np.array_equal(whole[:100], FaceLikeGenerator(seed=5).fill(np.empty((100, 128))))
    q = gen.queries(100, 70_000)
    assert q.shape == (100, 128) and np.isfinite(q).all()
    norms = np.linalg.norm(whole, axis=1)
    assert 1.2 < norms.mean() < 1.7  # dlib descriptors are not unit length


def test_other_dimensions_and_unknown_model() -> None:
    ids, vecs = next(FaceLikeGenerator(dim=64, seed=1).gallery(500))
    assert vecs.shape == (500, 64) and vecs.dtype == np.float32
    assert ids.tolist() == list(range(500))
    with pytest.raises(ValueError, match="mixture or gaussian"):
        FaceLikeGenerator(model="uniform")  # type: ignore[arg-type]
