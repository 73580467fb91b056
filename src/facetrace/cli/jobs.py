"""``facetrace jobs``: ingest jobs, their per-item errors, and resuming them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from facetrace import operations as ops
from facetrace.cli.common import (
    console,
    handle_errors,
    opened,
    print_json,
    print_summary,
    run_with_progress,
)
from facetrace.cli.governance import actor_or_fail

app = typer.Typer(help="Ingest jobs: list, show errors, resume.", no_args_is_help=True)


@app.command("list")
@handle_errors
def list_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The most recent ingest jobs."""
    with opened(ctx) as engine:
        records = ops.ingest.jobs(engine, actor_or_fail())
    if as_json:
        print_json([j.to_dict() for j in records])
        return
    table = Table()
    for col in ("id", "source", "kind", "status", "items", "errors", "updated"):
        table.add_column(col)
    for j in records:
        table.add_row(
            str(j.id),
            j.source,
            j.kind,
            j.status,
            str(sum(j.item_counts.values())),
            str(len(j.errors)),
            j.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)


@app.command("show")
@handle_errors
def show(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One job: its inputs, status, item counts and every item's error."""
    with opened(ctx) as engine:
        job = ops.ingest.job(engine, actor_or_fail(), job_id)
    if as_json:
        print_json(job.to_dict())
        return
    console.print(f"job {job.id} ({job.kind}) into {job.source!r}: {job.status}", markup=False)
    console.print(f"inputs: {', '.join(job.spec.get('paths', []))}", markup=False)
    console.print(
        "items: " + ", ".join(f"{n} {s}" for s, n in sorted(job.item_counts.items())),
        markup=False,
    )
    for key, error in job.errors:
        console.print(f"  {key}: {error}", markup=False)


@app.command("resume")
@handle_errors
def resume(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    workers: Annotated[int | None, typer.Option("--workers")] = None,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="Analyse on a Ray cluster: 'auto' or 'ray://HOST:PORT'."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Finish an interrupted job, or retry a finished job's item errors; items already
    done are skipped unread."""
    with opened(ctx) as engine:
        actor = actor_or_fail()
        summary = run_with_progress(
            None,
            lambda on_item: ops.ingest.resume(
                engine, actor, job_id, workers=workers, on_item=on_item, cluster=cluster
            ),
        )
    print_summary(summary, as_json)
