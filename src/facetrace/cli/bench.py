"""``facetrace bench``: benchmarks that print JSON and compare against a same-run baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facetrace.cli.common import console, handle_errors, print_json, settings_from
from facetrace.cli.index_cmd import bench_index

app = typer.Typer(help="Benchmarks (JSON out, ratio against a baseline in the same run).")
app.command("index")(bench_index)


@app.command("ingest")
@handle_errors
def ingest(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Folder of photos, e.g. lfw-dev/images.")],
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker processes (default: CPU cores).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Use the first N photos.")] = None,
    baseline: Annotated[
        bool, typer.Option("--baseline/--no-baseline", help="Also time the plain dlib loop.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Images/s and faces/s of the pipeline vs a plain one-image-at-a-time dlib loop."""
    from facetrace.errors import NotFoundError
    from facetrace.evaluation.bench_ingest import bench_ingest

    if not folder.is_dir():
        raise NotFoundError(f"{folder} is not a folder")
    report = bench_ingest(
        folder, limit=limit, workers=workers, baseline=baseline, settings=settings_from(ctx)
    )
    if as_json:
        print_json(report)
    else:
        console.print_json(data=report)


@app.command("search")
@handle_errors
def search(
    ctx: typer.Context,
    probe: Annotated[Path, typer.Argument(help="Probe photo.")],
    n: Annotated[int, typer.Option("--n", help="Synthetic faces in the gallery.")] = 100_000,
    gallery: Annotated[
        list[Path] | None, typer.Option("--photo", help="Real photos added to the gallery.")
    ] = None,
    repeats: Annotated[int, typer.Option("--repeats")] = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """End-to-end search latency (photo in, ranked matches out) on an N-face gallery."""
    from facetrace.evaluation.bench_search import bench_search

    report = bench_search(
        settings_from(ctx), n, probe, gallery_photos=gallery or (), repeats=repeats
    )
    if as_json:
        print_json(report)
    else:
        console.print_json(data=report)
