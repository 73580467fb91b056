"""The ``facetrace`` command line. Each command group lives in its own module."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from facetrace import operations as ops
from facetrace.cli import bench, cases, demo, index_cmd, jobs, people, sources
from facetrace.cli import eval as eval_cmd
from facetrace.cli import governance as governance_cli
from facetrace.cli.common import (
    build_settings,
    console,
    handle_errors,
    opened,
    print_json,
    print_summary,
    run_with_progress,
    settings_from,
)

app = typer.Typer(
    name="facetrace",
    help="Face search with provenance: collect photos, index faces, search by photo.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(sources.app, name="sources")
app.add_typer(bench.app, name="bench")
app.add_typer(eval_cmd.app, name="eval")
app.add_typer(jobs.app, name="jobs")
app.add_typer(people.app, name="people")
app.add_typer(cases.app, name="case")
app.add_typer(index_cmd.index_app, name="index")
app.command("demo")(demo.demo)
governance_cli.mount(app)


@app.callback()
@handle_errors
def root(
    ctx: typer.Context,
    home: Annotated[
        str | None,
        typer.Option(
            "--home",
            help="Data folder (database, index, thumbnails). Env: FACETRACE_HOME; "
            "default ./facetrace-data.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="FACETRACE_API_KEY",
            show_default=False,
            help="API key to act as (env FACETRACE_API_KEY). Needed once any user exists.",
        ),
    ] = None,
) -> None:
    """Global options."""
    ctx.obj = build_settings(home)
    ctx.meta[governance_cli.API_KEY_META] = api_key


@app.command()
@handle_errors
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Photos or folders (recursive), URL lists (.txt, one URL a line), "
            "or WARC archives (.warc, .warc.gz)."
        ),
    ],
    source: Annotated[str, typer.Option("--source", help="Registered source name.")],
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker processes (default: CPU cores).")
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            help="Analyse on a Ray cluster instead of local workers: 'auto' (the cluster "
            "this machine is a node of) or 'ray://HOST:PORT'. Every node needs facetrace "
            "with its ray extra.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Detect, embed and index every face in PATHS, recording where each came from.

    The run is a job: if it is interrupted, 'facetrace jobs resume ID' finishes it.
    """
    from facetrace.ingest.collect import InputKind, input_kind
    from facetrace.ingest.folder import iter_files

    with opened(ctx) as engine:
        actor = governance_cli.actor_or_fail()
        ops.ingest.check_source(engine, actor, source)  # fail fast, before counting files
        kind = input_kind(paths)
        total = sum(1 for _ in iter_files(paths)) if kind is InputKind.FOLDER else None
        summary = run_with_progress(
            total,
            lambda on_item: ops.ingest.ingest(
                engine,
                actor,
                paths,
                source=source,
                workers=workers,
                on_item=on_item,
                cluster=cluster,
            ),
        )
    print_summary(summary, as_json)


@app.command()
@handle_errors
def search(
    ctx: typer.Context,
    photo: Annotated[Path, typer.Argument(help="Probe photo.")],
    case: Annotated[str | None, typer.Option("--case", help="Case ID (required).")] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why this search is needed (required).")
    ] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Matches per face.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find where the faces in PHOTO appear in the gallery. Results are investigative leads."""
    from facetrace.errors import UsageError

    if not case or not reason:
        raise UsageError("every search needs --case ID and --reason TEXT; it is audited")
    with opened(ctx) as engine:
        result = ops.gallery.search(
            engine, governance_cli.actor_or_fail(), photo, case_id=case, reason=reason, top_k=top_k
        )
    if as_json:
        print_json(result.to_dict())
        return
    if not result.faces:
        console.print("No face found in the probe photo.")
        return
    console.print(
        f"{len(result.faces)} face(s) in the probe; gallery of {result.gallery_size} faces. "
        "Matches are investigative leads, not identifications."
    )
    for n, face in enumerate(result.faces, 1):
        table = Table(title=f"face {n} at {face.bbox.as_list()}", title_justify="left")
        for col in (
            "#",
            "distance",
            "score",
            "false-match rate",
            "worst group",
            "source",
            "origin",
            "page",
            "collected",
        ):
            table.add_column(col)
        for rank, m in enumerate(face.matches, 1):
            p = m.provenance[0] if m.provenance else None
            table.add_row(
                str(rank),
                f"{m.distance:.3f}",
                f"{m.score:.2f}",
                f"{m.false_match_rate:.1e}" if m.false_match_rate is not None else "n/a",
                f"{m.worst_group_false_match_rate:.1e}"
                if m.worst_group_false_match_rate is not None
                else "n/a",
                p.source if p else "",
                p.origin if p else "",
                (p.page_url or "") if p else "",
                p.collected_at.strftime("%Y-%m-%d %H:%M") if p else "",
            )
        console.print(table)


@app.command()
@handle_errors
def verify(
    ctx: typer.Context,
    photo_a: Annotated[Path, typer.Argument(help="First photo.")],
    photo_b: Annotated[Path, typer.Argument(help="Second photo.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Compare the largest face of two photos (1:1)."""
    with opened(ctx) as engine:
        result = ops.gallery.verify(engine, governance_cli.actor_or_fail(), photo_a, photo_b)
    if as_json:
        print_json(result.to_dict())
        return
    verdict = "same person" if result.same_person else "different people"
    fmr = (
        f", a stranger scores this close with probability {result.false_match_rate:.1e}"
        if result.false_match_rate is not None
        else ""
    )
    if result.worst_group_false_match_rate is not None:
        fmr += f" ({result.worst_group_false_match_rate:.1e} in the worst-measured group)"
    console.print(
        f"{verdict} (distance {result.distance:.3f}, threshold {result.threshold:.3f}{fmr})"
    )


@app.command()
@handle_errors
def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts of sources, photos and faces."""
    with opened(ctx) as engine:
        s = ops.gallery.stats(engine, governance_cli.actor_or_fail())
    if as_json:
        print_json(s.to_dict())
        return
    console.print(f"{s.sources} sources, {s.photos} photos, {s.faces} faces ({s.indexed} indexed)")


@app.command()
@handle_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="API processes sharing the port (more than 1 needs PostgreSQL and Milvus).",
        ),
    ] = 1,
) -> None:
    """Serve the REST API and the web UI (/ui/) for the gallery in --home (OpenAPI at
    /openapi.json).

    Every request needs an API key (header X-API-Key) or a signed-in session; make the
    first admin and key with 'facetrace users add NAME --role admin'."""
    import uvicorn

    from facetrace.api import app as api

    settings = settings_from(ctx)
    if workers == 1:
        uvicorn.run(api.create_app(settings), host=host, port=port, log_level="info")
        return
    api.check_shared(settings)
    os.environ[api.SETTINGS_VARIABLE] = settings.model_dump_json()
    uvicorn.run(
        "facetrace.api.app:from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
