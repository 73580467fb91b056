"""``facetrace index ...`` and ``facetrace bench index``: thin wrappers over library calls."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path

import typer

from facetrace.config import IndexBackend, Settings
from facetrace.errors import FaceTraceError

index_app = typer.Typer(help="Inspect, rebuild and migrate the vector index.", no_args_is_help=True)


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.obj
    if not isinstance(settings, Settings):
        settings = Settings()
    return settings


def _fail(exc: FaceTraceError) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=1)


@index_app.command("stats")
def stats(
    ctx: typer.Context,
    json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the index backend, structure, counts and sizes."""
    from facetrace.cli.common import opened
    from facetrace.cli.governance import actor_or_fail
    from facetrace.operations import index

    try:
        with opened(ctx) as engine:
            info = index.stats(engine, actor_or_fail())
    except FaceTraceError as exc:
        raise _fail(exc) from exc
    if json:
        typer.echo(jsonlib.dumps(info))
    else:
        for key, value in info.items():
            typer.echo(f"{key}: {value}")


@index_app.command("rebuild")
def rebuild(ctx: typer.Context) -> None:
    """Drop removed vectors for good and rebuild the search structure."""
    from facetrace.cli.common import opened
    from facetrace.cli.governance import actor_or_fail
    from facetrace.operations import index

    try:
        with opened(ctx) as engine:
            info = index.rebuild(engine, actor_or_fail())
    except FaceTraceError as exc:
        raise _fail(exc) from exc
    typer.echo(f"rebuilt {info['backend']} index: {info['count']} vectors")


@index_app.command("migrate")
def migrate(
    ctx: typer.Context,
    to: IndexBackend = typer.Option(..., "--to", help="Backend to copy the gallery into."),
    source: IndexBackend | None = typer.Option(
        None, "--from", help="Backend to copy from (default: the configured one)."
    ),
    vectors: Path | None = typer.Option(
        None, "--vectors", help=".npz with ids and vectors to import instead.", exists=True
    ),
) -> None:
    """Copy every vector into another backend, without re-embedding."""
    from facetrace.cli.common import opened
    from facetrace.cli.governance import actor_or_fail
    from facetrace.operations import index

    try:
        with opened(ctx) as engine:
            moved = index.migrate(engine, actor_or_fail(), to, source=source, vectors=vectors)
    except FaceTraceError as exc:
        raise _fail(exc) from exc
    typer.echo(f"copied {moved} vectors into {to.value}")


def bench_index(
    ctx: typer.Context,
    n: int = typer.Option(100_000, "--n", min=1, help="Gallery size."),
    backend: IndexBackend | None = typer.Option(
        None, "--backend", help="Backend (default: the configured one)."
    ),
    dim: int = typer.Option(128, "--dim", min=1, help="Vector dimension."),
    json: bool = typer.Option(False, "--json", help="Print JSON."),
    queries: int = typer.Option(1000, "--queries", min=1, help="Probe count."),
    workdir: Path | None = typer.Option(None, "--workdir", help="Scratch folder (default: temp)."),
    face_model: str = typer.Option(
        "mixture",
        "--face-model",
        help="Face-like data: mixture (fitted to real faces) or gaussian (harder, older).",
    ),
    gallery: str = typer.Option(
        "collected",
        "--gallery",
        help="Gallery shape: collected (LFW's photos per person, half the probes strangers) "
        "or enrolled (about 4 photos each, 20%% strangers; the sampling before 2026-12).",
    ),
) -> None:
    """Benchmark the index on face-like vectors: latency, throughput, recall, memory."""
    from facetrace.evaluation.bench_index import run_bench
    from facetrace.evaluation.facelike import GalleryShape

    if face_model not in ("mixture", "gaussian"):
        raise typer.BadParameter("mixture or gaussian", param_hint="--face-model")
    if gallery not in list(GalleryShape):
        raise typer.BadParameter("collected or enrolled", param_hint="--gallery")
    try:
        result = run_bench(
            _settings(ctx),
            n,
            backend,
            dim,
            queries=queries,
            workdir=workdir,
            model="mixture" if face_model == "mixture" else "gaussian",
            shape=GalleryShape(gallery),
        )
    except FaceTraceError as exc:
        raise _fail(exc) from exc
    if json:
        typer.echo(result.to_json())
    else:
        for key, value in jsonlib.loads(result.to_json()).items():
            typer.echo(f"{key}: {value}")
