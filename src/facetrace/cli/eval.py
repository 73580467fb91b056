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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from facetrace.cli.common import console, handle_errors, print_json, settings_from
from facetrace.config import Settings
from facetrace.errors import UsageError

if TYPE_CHECKING:
    from facetrace.evaluation.calibration import Calibration
    from facetrace.evaluation.demographics import DemographicsReport, LabelSet, PairSet
    from facetrace.store.blobs import BlobStore

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


@contextmanager
def _gallery_blobs(settings: Settings, *, create: bool = False) -> Iterator[BlobStore | None]:
    """The gallery's blob store, where its calibration tables live; None when there is
    no gallery yet and ``create`` is false (reading then falls back to the packaged table)."""
    from sqlalchemy.engine import make_url

    from facetrace.store.blobs import open_blobs
    from facetrace.store.repository import Store

    url = make_url(settings.resolved_database_url)
    sqlite_file = Path(url.database or "") if url.get_backend_name() == "sqlite" else None
    if not create and sqlite_file is not None and not sqlite_file.is_file():
        yield None
        return
    store = Store.open(settings.resolved_database_url)
    try:
        yield open_blobs(settings, store.engine)
    finally:
        store.close()


def _load_calibration(settings: Settings, model_id: str) -> Calibration | None:
    """The gallery's table for ``model_id``, else the packaged one, else None."""
    from facetrace.evaluation.calibration import load_calibration

    with _gallery_blobs(settings) as blobs:
        return load_calibration(model_id, settings.home, blobs)


def _save_calibration(settings: Settings, table: Calibration, out: Path | None) -> str:
    """Write ``table`` to ``out``, or make it the gallery's own; returns where it went."""
    from facetrace.evaluation.calibration import save_calibration

    if out is not None:
        return str(table.save(out))
    with _gallery_blobs(settings, create=True) as blobs:
        assert blobs is not None
        return save_calibration(table, blobs)


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
def cluster(
    ctx: typer.Context,
    images: Annotated[
        Path, typer.Option("--images", help="Folder of photos, one subfolder per person.")
    ],
    variant: VariantOpt = None,
    cache: CacheOpt = None,
    fallback: FallbackOpt = "cnn",
    as_json: JsonOpt = False,
) -> None:
    """Group faces into people and score it (BCubed, pairwise) against the folders,
    beside Chinese whispers and DBSCAN on the same descriptors."""
    import numpy as np

    from facetrace.evaluation.clustering import evaluate_clustering

    settings = settings_from(ctx)
    describer = _describer(settings, variant, cache, fallback)
    files = sorted(p for p in images.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not files:
        raise UsageError(f"no photos under {images}")
    embs, truth, failed = [], [], 0
    for path in files:
        found = describer.describe(path, path.relative_to(images).as_posix())
        if found.embedding is None:
            failed += 1
            continue
        embs.append(found.embedding)
        truth.append(path.parent.relative_to(images).as_posix())
    if hasattr(describer, "flush"):
        describer.flush()
    if settings.cluster_threshold is not None:
        threshold = settings.cluster_threshold
    else:
        calibration = _load_calibration(settings, describer.embedder.model_id)
        if calibration is None:
            raise UsageError("this model has no calibration; set FACETRACE_CLUSTER_THRESHOLD")
        threshold = calibration.threshold_at(settings.cluster_fmr)
    scores = evaluate_clustering(
        np.asarray(embs, dtype=np.float32),
        np.asarray(truth),
        threshold=threshold,
        votes=settings.cluster_votes,
    )
    data = {
        "command": shlex.join(sys.argv),
        "images": len(files),
        "failed": failed,
        "threshold": round(threshold, 4),
        "cluster_fmr": settings.cluster_fmr,
        "votes": settings.cluster_votes,
        "results": [s.to_dict() for s in scores],
    }
    if as_json:
        print_json(data)
        return
    console.print(
        f"{len(embs)} faces of {scores[0].identities} people ({failed} photos without a face); "
        f"grouping distance {threshold:.3f} (FMR {settings.cluster_fmr:g}), votes "
        f"{settings.cluster_votes}"
    )
    table = Table("method", "BCubed P", "BCubed R", "BCubed F1", "pair P", "pair R", "clusters")
    for s in scores:
        table.add_row(
            s.method,
            f"{s.bcubed_precision:.4f}",
            f"{s.bcubed_recall:.4f}",
            f"{s.bcubed_f1:.4f}",
            f"{s.pairwise_precision:.4f}",
            f"{s.pairwise_recall:.4f}",
            str(s.clusters),
        )
    console.print(table)


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
    )
    from facetrace.evaluation.identify import identity_of, read_list
    from facetrace.evaluation.pairs import describe_all

    settings = settings_from(ctx)
    if out is None:
        # The table in HOME changes every search's false-match rates.
        from facetrace.cli.common import authorize
        from facetrace.operations.index import check_calibrate

        authorize(ctx, check_calibrate)
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
    where = _save_calibration(settings, table, out)
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
        "table": where,
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
        f"and {table.genuine_pairs} genuine pairs -> {where}"
    )
    for row in rows:
        console.print(
            f"  FMR {row['fmr']:g}: threshold {row['threshold']}, FNMR {100 * row['fnmr']:.2f}%"
        )


@app.command()
@handle_errors
def demographics(
    ctx: typer.Context,
    labels: Annotated[
        Path,
        typer.Option(
            "--labels",
            help="CSV with an 'image' column, optionally 'identity', and group columns "
            "(sex, race, age, ...).",
        ),
    ],
    images: Annotated[Path, typer.Option("--images", help="Folder the image paths are in.")],
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="Operating distance (default: the one search uses)."),
    ] = None,
    fmr: Annotated[
        float | None,
        typer.Option(
            "--fmr",
            help="Target false-match rate: the threshold search would use at this "
            "FACETRACE_MATCH_FMR (default: the configured one).",
        ),
    ] = None,
    groups: Annotated[
        str | None,
        typer.Option("--groups", help="Comma-separated group columns (default: all)."),
    ] = None,
    combine: Annotated[
        bool,
        typer.Option("--combine/--no-combine", help="Also report each combination of two columns."),
    ] = True,
    max_pairs: Annotated[
        int,
        typer.Option("--max-pairs", help="Sample this many impostor pairs when there are more."),
    ] = 20_000_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the pair sample.")] = 0,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write per-group FMR and FNMR with intervals to this PNG."),
    ] = None,
    calibrate: Annotated[
        str | None,
        typer.Option(
            "--calibrate",
            help="Store the worst-group curve of this grouping (e.g. 'sex×race' or "
            "'sex,race') in the calibration table, so the decision threshold holds every "
            "measured group to the target.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="With --calibrate: the table file to update (default: HOME/calibration/).",
        ),
    ] = None,
    dataset: Annotated[str, typer.Option("--dataset", help="Name shown in the report.")] = "",
    variant: VariantOpt = None,
    cache: CacheOpt = None,
    fallback: FallbackOpt = "none",
    as_json: JsonOpt = False,
) -> None:
    """Error rates by demographic group: FMR (same- and cross-group), FNMR, detection."""
    from facetrace.evaluation.calibration import decision_threshold
    from facetrace.evaluation.demographics import evaluate_demographics, read_labels
    from facetrace.evaluation.pairs import describe_all

    settings = settings_from(ctx)
    if threshold is not None and fmr is not None:
        raise UsageError("give --threshold or --fmr, not both")
    if calibrate is not None and out is None:
        from facetrace.cli.common import authorize
        from facetrace.operations.index import check_calibrate

        authorize(ctx, check_calibrate)  # the home's table moves every search's threshold
    if not images.is_dir():
        raise UsageError(f"--images {images} is not a folder")
    label_set = read_labels(labels, [g.strip() for g in groups.split(",")] if groups else None)
    describer = _describer(settings, variant, cache, fallback)
    table = _load_calibration(settings, describer.embedder.model_id)
    if fmr is not None:
        settings = settings.model_copy(update={"match_fmr": fmr})
    target = settings.match_fmr
    if threshold is not None:
        operating, source = threshold, "--threshold"
    else:
        operating = decision_threshold(settings, table)
        source = (
            "FACETRACE_MATCH_THRESHOLD"
            if settings.match_threshold is not None
            else f"calibration at FMR {target:g}, scope {settings.match_fmr_scope.value}"
            + ("" if table is None or table.worst_group is not None else " (no group curve)")
        )
    described = describe_all(describer, images, list(label_set.images))
    report, pairs = evaluate_demographics(
        label_set,
        [described[k].embedding for k in label_set.images],
        threshold=operating,
        target_fmr=target,
        threshold_source=source,
        dataset=dataset or labels.stem,
        combine=combine,
        max_pairs=max_pairs,
        seed=seed,
    )
    data = {"command": shlex.join(["facetrace", *sys.argv[1:]]), **report.to_dict()}
    if calibrate is not None:
        data["calibration"] = _store_worst_group(
            settings,
            describer.embedder.model_id,
            table,
            report,
            pairs,
            label_set,
            calibrate,
            out,
            data["command"],
        )
    if plot is not None:
        from facetrace.evaluation.plot import plot_group_rates

        plot_group_rates(report, plot)
    if as_json:
        print_json(data)
        return
    _print_demographics(data)


def _store_worst_group(
    settings: Settings,
    model_id: str,
    table: Calibration | None,
    report: DemographicsReport,
    pairs: PairSet,
    label_set: LabelSet,
    grouping_name: str,
    out: Path | None,
    command: str,
) -> dict[str, Any]:
    from facetrace.evaluation.calibration import MIN_GROUP_ERRORS, Calibration
    from facetrace.evaluation.demographics import (
        COMBINE,
        groupings,
        same_group_distances,
        worst_group_curve,
    )

    wanted = COMBINE.join(p.strip() for p in grouping_name.replace(COMBINE, ",").split(","))
    by_name = {g.name: g for g in groupings(label_set)}
    if wanted not in by_name:
        raise UsageError(f"--calibrate names no grouping of this run; one of {', '.join(by_name)}")
    base = Calibration.load(out) if out is not None and out.is_file() else table
    if base is None:
        raise UsageError("this model has no calibration table to extend: run 'eval calibrate'")
    curve = worst_group_curve(
        base,
        same_group_distances(by_name[wanted], pairs),
        min_pairs=max(1, round(MIN_GROUP_ERRORS / report.target_fmr)),
        dataset=report.dataset,
        grouping=wanted,
        command=command,
    )
    where = _save_calibration(settings, base.with_worst_group(curve), out)
    return {
        "table": where,
        "grouping": wanted,
        "groups": curve.extra["group_pairs"],
        "worst_group_threshold_at_target": round(curve.threshold_at(report.target_fmr), 4),
        "overall_threshold_at_target": round(base.threshold_at(report.target_fmr), 4),
    }


def _print_demographics(data: dict[str, Any]) -> None:
    from facetrace.evaluation.demographics import Verdict

    def rate(r: dict[str, Any]) -> str:
        return "-" if not r["pairs"] else f"{r['value']:.1e} ({r['errors']}/{r['pairs']})"

    def ci(r: dict[str, Any]) -> str:
        return "-" if not r["pairs"] else f"{r['ci95'][0]:.1e}-{r['ci95'][1]:.1e}"

    def pct(r: dict[str, Any]) -> str:
        return "-" if not r["pairs"] else f"{100 * r['value']:.1f}% ({r['errors']}/{r['pairs']})"

    def threshold(s: dict[str, Any], key: str) -> str:
        t = s[f"threshold_for_{key}_fmr"]
        return "-" if t is None else f"{t}" + ("" if s[f"threshold_for_{key}_resolved"] else "*")

    o = data["overall"]
    console.print(
        f"{data['dataset']}: {data['images']} images, {data['identities']} identities; "
        f"threshold {data['threshold']:.4f} ({data['threshold_source']}), target FMR "
        f"{data['target_fmr']:g}"
    )
    sample = " (sampled)" if o["impostor_pairs_sampled"] else ""
    console.print(
        f"overall: FMR {rate(o['fmr'])} [{ci(o['fmr'])}]{sample}; FNMR {pct(o['fnmr'])}; "
        f"faces not found {pct(o['not_detected'])}"
    )
    short = {Verdict.MEETS: "meets", Verdict.EXCEEDS: "exceeds", Verdict.UNDECIDED: "can't tell"}
    for g in data["groupings"]:
        table = Table(title=g["grouping"], title_justify="left")
        for col in (
            "group",
            "FMR same group",
            "95% CI",
            "FMR cross",
            "FNMR",
            "not found",
            "t target",
            "t overall",
            "vs target",
        ):
            table.add_column(col)
        for s in g["groups"]:
            table.add_row(
                s["group"] + ("" if s["known"] else " (not compared)"),
                rate(s["fmr_same_group"]),
                ci(s["fmr_same_group"]),
                "-"
                if not s["fmr_cross_group"]["pairs"]
                else f"{s['fmr_cross_group']['value']:.1e}",
                pct(s["fnmr"]),
                pct(s["not_detected"]),
                threshold(s, "target"),
                threshold(s, "overall"),
                short.get(s["verdict"], s["verdict"]),
            )
        console.print(table)
        ratio = g["max_min_fmr_ratio"]
        console.print(
            "  highest / lowest FMR: "
            + (
                f"{ratio:.1f}x ({g['highest_fmr_group']} / {g['lowest_fmr_group']})"
                if ratio
                else "-"
            )
            + f"; {g['note']}"
        )
    worst = data["worst_group"]
    if worst:
        verdict = "within" if worst["meets_target"] else "misses"
        console.print(
            f"worst group: {worst['group']} ({worst['grouping']}), FMR {rate(worst['fmr'])} "
            f"= {worst['times_target']}x the target: {verdict} it (95% interval: "
            f"{worst['verdict']}); it would need threshold {worst['threshold_for_target_fmr']}"
        )
    else:
        console.print(
            "worst group: none named, since no group has enough false matches or pairs "
            f"to compare at FMR {data['target_fmr']:g}"
        )
    if "calibration" in data:
        c = data["calibration"]
        console.print(
            f"worst-group curve of {c['grouping']} stored in {c['table']}: threshold at the "
            f"target {c['worst_group_threshold_at_target']} (overall table "
            f"{c['overall_threshold_at_target']})"
        )
    console.print(
        "* not resolved: too few pairs to show a rate that low (no false match allowed). "
        f"Intervals: {data['intervals']}."
    )
