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
