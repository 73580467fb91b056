"""``facetrace demo``: build a small gallery from bundled samples and search it."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from facetrace.cli.common import (
    console,
    err_console,
    handle_errors,
    local_actor_name,
    settings_from,
)

DEMO_SOURCE = "demo-samples"
DEMO_BASIS = "bundled sample photos (MIT and Boost licences), for demonstration"


def samples_dir() -> Path:
    """Folder of the bundled sample photos (``gallery/`` and ``probes/``)."""
    return Path(str(files("facetrace") / "samples"))


@handle_errors
def demo(
    ctx: typer.Context,
    top_k: Annotated[int, typer.Option("--top-k", help="Matches shown per probe.")] = 3,
) -> None:
    """Ingest the bundled sample photos into HOME/demo and search them with probe photos."""
    from facetrace.app import FaceTrace

    settings = settings_from(ctx)
    settings = settings.model_copy(update={"home": settings.home / "demo"})
    samples = samples_dir()
    with FaceTrace.open(settings) as engine:
        if engine.store.get_source(DEMO_SOURCE) is None:
            engine.add_source(DEMO_SOURCE, lawful_basis=DEMO_BASIS, actor=local_actor_name())
        err_console.print(f"building the demo gallery in {settings.home} ...")
        summary = engine.ingest(
            [samples / "gallery"], source=DEMO_SOURCE, workers=1, actor=local_actor_name()
        )
        console.print(
            f"gallery: {summary.photos_added} photos added ({summary.duplicates} already there), "
            f"{engine.stats().faces} faces indexed"
        )
        table = Table(title="demo searches (matches are investigative leads)")
        for col in ("probe", "rank", "distance", "score", "matched photo", "same person?"):
            table.add_column(col, overflow="fold")
        for probe in sorted((samples / "probes").iterdir()):
            if probe.suffix.lower() not in {".jpg", ".png"}:
                continue
            result = engine.search(
                probe,
                case_id="demo",
                reason="facetrace demo",
                top_k=top_k,
                actor=local_actor_name(),
            )
            if not result.faces:
                table.add_row(probe.name, "-", "", "", "no face found", "")
                continue
            for rank, m in enumerate(result.faces[0].matches, 1):
                origin = Path(m.provenance[0].origin) if m.provenance else None
                shown = (
                    str(origin.relative_to(samples / "gallery"))
                    if origin and origin.is_relative_to(samples / "gallery")
                    else str(origin)
                )
                table.add_row(
                    probe.name if rank == 1 else "",
                    str(rank),
                    f"{m.distance:.3f}",
                    f"{m.score:.2f}",
                    shown,
                    "yes" if m.distance < engine.match_threshold else "no",
                )
        console.print(table)
        console.print(
            f"Try: facetrace --home {settings.home} search PHOTO --case C1 --reason 'why'"
        )
