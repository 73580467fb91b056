"""``facetrace eval``: verification (pairs), open-set identification, calibration.

Every command describes images with the configured pipeline (the same
detector, embedder and descriptor augmentation as ingest and search) unless
``--variant`` names one of the measured variants
(:data:`facetrace.evaluation.variants.RECIPES`). ``--cache DIR`` keeps
detections and descriptors on disk so reruns are cheap.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from facetrace.cli.common import console, handle_errors, print_json, settings_from
from facetrace.config import Settings
from facetrace.errors import UsageError

app = typer.Typer(
    help="Measure accuracy: 1:1 pairs, open-set 1:N identification, FMR calibration.",
    no_args_is_help=True,
)

VariantOpt = Annotated[
    str | None,
    typer.Option(
        "--variant",
        help="A measured pipeline variant (baseline, default, noflip, jitter10, ...); "
        "default: the configured pipeline.",
    ),
]
CacheOpt = Annotated[
    Path | None,
    typer.Option("--cache", help="Folder caching detections and descriptors between runs."),
]
FallbackOpt = Annotated[
    str,
    typer.Option(
        "--fallback",
        help="When HOG finds no face, try in order (comma-separated): 'cnn' (dlib's CNN "
        "detector), 'centre' (LFW-aligned geometry); 'none' to count the image as failed.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _describer(
    settings: Settings, variant: str | None, cache: Path | None, fallback: str = "cnn"
) -> Any:
    from facetrace.evaluation.variants import RECIPES, Describer, Fallback, recipe
    from facetrace.vision.analyzer import build_analyzer
    from facetrace.vision.tta import AugmentedEmbedder

    if variant is not None:
        if variant not in RECIPES:
            raise UsageError(f"unknown variant {variant!r}; one of {', '.join(RECIPES)}")
        return recipe(variant, cache, settings)
    try:
        fallbacks = [Fallback(f.strip()) for f in fallback.split(",") if f.strip() != "none"]
    except ValueError:
        raise UsageError("--fallback is a comma-separated list of cnn, centre or none") from None
    analyzer = build_analyzer(settings)
    embedder = analyzer.embedder
    if not isinstance(embedder, AugmentedEmbedder) and (
        settings.embed_flip or settings.embed_jitter
    ):
        embedder = AugmentedEmbedder(
            embedder, flip=settings.embed_flip, jitter=settings.embed_jitter
        )
    aug = f"flip{int(settings.embed_flip)}-jit{settings.embed_jitter}"
    detect_key = (
        f"{settings.detector.value}-min{settings.min_face_px}-max{settings.max_detect_side}"
        f"-{settings.small_face_pass}"
    )
    fb = "+".join(f.value for f in fallbacks) or "none"
    return Describer(
        detector=analyzer.detector,
        aligner=analyzer.aligner,
        embedder=embedder,
        fallbacks=fallbacks,
        key=f"engine_{detect_key}_{fb}_{embedder.model_id}_{aug}",
        detect_key=detect_key,
        cache_dir=cache,
        max_image_bytes=settings.max_image_bytes,
        max_image_pixels=settings.max_image_pixels,
    )


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


@app.command()
@handle_errors
def pairs(
    ctx: typer.Context,
    pairs_file: Annotated[
        Path, typer.Option("--pairs", help="LFW pairs.txt or a CSV with columns a,b,same.")
    ],
    images: Annotated[Path, typer.Option("--images", help="Folder the pair paths are in.")],
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write ROC and DET curves to this PNG.")
    ] = None,
    baseline: Annotated[
        bool,
        typer.Option(
            "--baseline",
            help="Also run the plain dlib recipe (HOG upsample 1, 5-point, "
            "compute_face_descriptor, no jitter) in the same invocation.",
        ),
    ] = False,
    variant: VariantOpt = None,
    cache: CacheOpt = None,
    fallback: FallbackOpt = "cnn",
    as_json: JsonOpt = False,
) -> None:
    """1:1 verification: 10-fold accuracy (LFW protocol), ROC AUC, TAR at FAR 1e-2 and 1e-3."""
    from facetrace.evaluation.pairs import evaluate_pairs, read_pairs, roc_curve

    settings = settings_from(ctx)
    if not images.is_dir():
        raise UsageError(f"--images {images} is not a folder")
    pair_list = read_pairs(pairs_file)
    runs = [(variant or "configured", _describer(settings, variant, cache, fallback))]
    if baseline:
        runs.append(("baseline", _describer(settings, "baseline", cache)))
    reports = [evaluate_pairs(pair_list, images, d, variant=name) for name, d in runs]
    if plot is not None:
        from facetrace.evaluation.plot import plot_roc_det

        plot_roc_det(
            [
                (f"{r.variant}: acc {100 * r.accuracy:.2f}%, AUC {r.auc:.4f}", *roc_curve(r))
                for r in reports
            ],
            plot,
        )
    if as_json:
        print_json({"command": shlex.join(sys.argv), "results": [r.to_dict() for r in reports]})
        return
    table = Table(title=f"{pairs_file.name}: {len(pair_list)} pairs", title_justify="left")
    for col in (
        "variant",
        "accuracy (10-fold)",
        "ROC AUC",
        "TAR@FAR=1e-2",
        "TAR@FAR=1e-3",
        "no face: fallback / failed",
        "failed pairs",
        "ms/image",
    ):
        table.add_column(col)
    for r in reports:
        d = r.to_dict()
        fb = d["faces_by"]
        table.add_row(
            r.variant,
            f"{100 * r.accuracy:.2f}% ± {100 * r.accuracy_std:.2f}",
            f"{r.auc:.4f}",
            _pct(r.tar_at_far["0.01"]),
            _pct(r.tar_at_far["0.001"]),
            f"{fb['cnn'] + fb['centre']} ({fb['cnn']} cnn, {fb['centre']} centre) / {fb['failed']}",
            str(r.failed_pairs),
            f"{r.ms_per_image:.0f}",
        )
    console.print(table)
    console.print(
        "± is the standard deviation over folds; thresholds chosen on the other 9 folds. "
        "An image with no face makes its pairs fail (never accepted)."
    )


@app.command()
@handle_errors
def identify(
    ctx: typer.Context,
    images: Annotated[Path, typer.Option("--images", help="Folder the list paths are in.")],
    gallery: Annotated[Path, typer.Option("--gallery", help="List of gallery images.")],
    probes: Annotated[Path, typer.Option("--probes", help="List of mated probe images.")],
    nonmated: Annotated[
        Path | None, typer.Option("--nonmated", help="List of non-mated probe images.")
    ] = None,
    variant: VariantOpt = None,
    cache: CacheOpt = None,
    fallback: FallbackOpt = "cnn",
    as_json: JsonOpt = False,
) -> None:
    """Open-set 1:N identification: rank-1, rank-5, FNIR at FPIR 1e-2 and 1e-3 (95% Wilson CI)."""
    from facetrace.evaluation.identify import evaluate_identification, read_list

    settings = settings_from(ctx)
    report = evaluate_identification(
        images,
        read_list(gallery),
        read_list(probes),
        read_list(nonmated) if nonmated else [],
        _describer(settings, variant, cache, fallback),
        variant=variant or "configured",
    )
    data = report.to_dict()
    if as_json:
        print_json({"command": shlex.join(sys.argv), **data})
        return

    def ci(rate: dict[str, Any]) -> str:
        lo, hi = rate["ci95"]
        return f"{_pct(rate['value'])} [{_pct(lo)}, {_pct(hi)}] ({rate['k']}/{rate['n']})"

    console.print(
        f"gallery {data['gallery_size']} faces, {data['mated_probes']} mated and "
        f"{data['nonmated_probes']} non-mated probes; faces by {data['faces_by']}, "
        f"failed {data['failed']}"
    )
    console.print(f"rank-1: {ci(data['rank1'])}")
    console.print(f"rank-5: {ci(data['rank5'])}")
    for target, row in data["fnir_at_fpir"].items():
        note = "" if row["resolved"] else " (below 1/non-mated count: not resolved)"
        console.print(
            f"FNIR at FPIR={target}: {ci(row['fnir'])}, threshold {row['threshold']}, "
            f"measured FPIR {ci(row['fpir'])}{note}"
        )
    console.print(f"intervals: {data['interval']}")


@app.command()
@handle_errors
def calibrate(
    ctx: typer.Context,
    images: Annotated[
        Path, typer.Option("--images", help="Folder of identity folders (NAME/photo.jpg).")
    ],
    image_list: Annotated[
        Path | None,
        typer.Option("--list", help="Only these images (paths relative to --images)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write the table here (default: HOME/calibration/, used automatically)."
        ),
    ] = None,
    dataset: Annotated[str, typer.Option("--dataset", help="Name recorded in the table.")] = "",
    variant: VariantOpt = None,
    cache: CacheOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure distance -> false-match rate on every cross-identity pair of a face set."""
    import numpy as np

    from facetrace.evaluation.calibration import (
        build_calibration,
        impostor_genuine_distances,
        user_table_path,
    )
    from facetrace.evaluation.identify import identity_of, read_list
    from facetrace.evaluation.pairs import describe_all

    settings = settings_from(ctx)
    if out is None:
        # The table in HOME changes every search's false-match rates: admins only.
        from facetrace.cli.common import authorize

        authorize(ctx)
    if not images.is_dir():
        raise UsageError(f"--images {images} is not a folder")
    if image_list is not None:
        keys = read_list(image_list)
    else:
        keys = sorted(
            p.relative_to(images).as_posix()
            for p in images.rglob("*")
            if p.suffix.lower() in {".jpg", ".jpeg", ".png"} and p.is_file()
        )
    describer = _describer(settings, variant, cache, "none")
    described = describe_all(describer, images, keys)
    found = [k for k in keys if described[k].embedding is not None]
    if len({identity_of(k) for k in found}) < 2:
        raise UsageError("calibration needs faces of at least two identities")
    emb = np.stack([described[k].embedding for k in found])  # type: ignore[misc]
    imp, gen = impostor_genuine_distances(emb, [identity_of(k) for k in found])
    model_id = describer.embedder.model_id
    table = build_calibration(
        model_id,
        imp,
        gen,
        dataset=dataset or images.name,
        recipe=describer.key,
        command=shlex.join(["facetrace", *sys.argv[1:]]),
    )
    path = table.save(out if out is not None else user_table_path(settings.home, model_id))
    rows = []
    for fmr in (1e-2, 1e-3, 1e-4, 1e-5):
        if fmr >= table.fmr[0]:
            t = table.threshold_at(fmr)
            rows.append(
                {
                    "fmr": fmr,
                    "threshold": round(t, 4),
                    "fnmr": round(table.false_non_match_rate(t), 4),
                }
            )
    summary = {
        "model_id": model_id,
        "table": str(path),
        "faces": len(found),
        "images": len(keys),
        "impostor_pairs": table.impostor_pairs,
        "genuine_pairs": table.genuine_pairs,
        "thresholds": rows,
    }
    if as_json:
        print_json(summary)
        return
    console.print(
        f"{model_id}: {len(found)} faces of {len(keys)} images, {table.impostor_pairs} impostor "
        f"and {table.genuine_pairs} genuine pairs -> {path}"
    )
    for row in rows:
        console.print(
            f"  FMR {row['fmr']:g}: threshold {row['threshold']}, FNMR {100 * row['fnmr']:.2f}%"
        )
