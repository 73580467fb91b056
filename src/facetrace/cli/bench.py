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
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            help="Measure scale-out on this Ray cluster (auto, ray://HOST:PORT or HOST:PORT) "
            "against the embedded pipeline with as many CPUs.",
        ),
    ] = None,
    nodes: Annotated[
        str, typer.Option("--nodes", help="With --cluster: worker-node counts to time.")
    ] = "1,2",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Images/s and faces/s of the pipeline vs a plain one-image-at-a-time dlib loop,
    or with --cluster, on 1, 2, ... worker nodes of a Ray cluster vs the embedded pipeline."""
    from facetrace.errors import NotFoundError, UsageError
    from facetrace.evaluation.bench_ingest import bench_cluster_ingest, bench_ingest

    if not folder.is_dir():
        raise NotFoundError(f"{folder} is not a folder")
    if cluster is not None:
        try:
            counts = [int(n) for n in nodes.split(",")]
        except ValueError:
            raise UsageError(f"--nodes {nodes!r}: expected counts such as 1,2") from None
        report = bench_cluster_ingest(
            folder, cluster, nodes=counts, limit=limit, settings=settings_from(ctx)
        )
    else:
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


FR = Path("tests/fixtures/face_recognition")


@app.command("serve")
@handle_errors
def serve(
    ctx: typer.Context,
    n: Annotated[int, typer.Option("--n", help="Synthetic faces in the gallery.")] = 10_000,
    clients: Annotated[int, typer.Option("--clients", help="Concurrent clients.")] = 8,
    searches: Annotated[
        int, typer.Option("--searches", help="Timed searches per client (after one warm-up).")
    ] = 25,
    probe: Annotated[Path, typer.Option("--probe", help="Probe photo.")] = FR / "obama2.jpg",
    gallery: Annotated[
        list[Path] | None,
        typer.Option("--photo", help="Real photos added to the gallery (default: obama.jpg)."),
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Folder for the temporary gallery.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Latency and searches/s of 'facetrace serve' under N concurrent clients on a local
    gallery, against the engine's in-process search in the same run."""
    from facetrace.errors import NotFoundError
    from facetrace.evaluation.bench_serve import bench_serve

    photos = gallery or [FR / "obama.jpg"]
    for path in (probe, *photos):
        if not path.is_file():
            raise NotFoundError(f"{path} is not a file")
    report = bench_serve(
        settings_from(ctx),
        probe,
        photos,
        n=n,
        clients=clients,
        searches=searches,
        workdir=workdir,
    )
    if as_json:
        print_json(report)
        return
    console.print(
        f"{report['clients']} clients, {report['searches']} searches on "
        f"{report['n_faces']:,} faces, {report['errors']} errors"
    )
    console.print(
        f"served:     p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms, "
        f"{report['searches_per_s']} searches/s"
    )
    console.print(
        f"in-process: p50 {report['inprocess_p50_ms']} ms, "
        f"{report['inprocess_searches_per_s']} searches/s"
    )
    console.print(
        f"served / in-process: throughput {report['ratio_throughput_vs_inprocess']}x, "
        f"p50 {report['ratio_p50_vs_inprocess']}x"
    )
    console.print(
        f"best match a real photo in {report['top_match_real']} of {report['searches']} answers"
    )
