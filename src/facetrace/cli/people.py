"""``facetrace people``: the gallery's faces grouped into people, and the corrections."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from facetrace.cli.common import console, handle_errors, opened, print_json
from facetrace.cli.governance import actor_or_fail
from facetrace.errors import UsageError
from facetrace.identity import people as ops

app = typer.Typer(
    help="People: faces grouped into identities; list, show, merge, split, name, reject.",
    no_args_is_help=True,
)


def _ids(text: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError as exc:
        raise UsageError(f"expected comma-separated ids, got {text!r}") from exc


@app.command("list")
@handle_errors
def list_(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many people.")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """People with the most faces first."""
    with opened(ctx) as engine:
        found = ops.list_people(engine, actor_or_fail(), limit)
    if as_json:
        print_json([p.to_dict() for p in found])
        return
    table = Table("person", "name", "faces", "photos", "sources", "confirmed faces")
    for p in found:
        table.add_row(
            str(p.id),
            p.name or "",
            str(p.faces),
            str(p.photos),
            str(p.sources),
            str(p.pinned_faces),
        )
    console.print(table)


@app.command("show")
@handle_errors
def show(
    ctx: typer.Context,
    person: Annotated[int, typer.Argument(help="Person id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One person: every face, and where each photo was found."""
    with opened(ctx) as engine:
        detail = ops.show(engine, actor_or_fail(), person)
    if as_json:
        print_json(detail.to_dict())
        return
    s = detail.summary
    console.print(
        f"person {s.id}{' (' + s.name + ')' if s.name else ''}: {s.faces} faces in "
        f"{s.photos} photos from {s.sources} sources",
        markup=False,
    )
    table = Table("face", "photo", "confirmed", "source", "origin", "page", "collected")
    for f in detail.faces:
        p = f["provenance"][0] if f["provenance"] else {}
        table.add_row(
            str(f["face_id"]),
            str(f["photo_id"]),
            "yes" if f["pinned"] else "",
            p.get("source", ""),
            p.get("origin", ""),
            p.get("page_url") or "",
            (p.get("collected_at") or "")[:16],
        )
    console.print(table)


@app.command("merge")
@handle_errors
def merge(
    ctx: typer.Context,
    into: Annotated[int, typer.Argument(help="The person to keep.")],
    others: Annotated[list[int], typer.Argument(help="People to fold into it.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Say that several people are one; the decision survives reclustering."""
    with opened(ctx) as engine:
        summary = ops.merge(engine, actor_or_fail(), into, others)
    if as_json:
        print_json(summary.to_dict())
    else:
        console.print(f"person {summary.id} now has {summary.faces} faces")


@app.command("split")
@handle_errors
def split(
    ctx: typer.Context,
    person: Annotated[int, typer.Argument(help="Person id.")],
    faces: Annotated[str, typer.Option("--faces", help="Face ids to move out, e.g. 3,7,9.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Move faces out of a person into a new one; the two stay apart."""
    with opened(ctx) as engine:
        summary = ops.split(engine, actor_or_fail(), person, _ids(faces))
    if as_json:
        print_json(summary.to_dict())
    else:
        console.print(f"moved {summary.faces} faces to new person {summary.id}")


@app.command("name")
@handle_errors
def name(
    ctx: typer.Context,
    person: Annotated[int, typer.Argument(help="Person id.")],
    label: Annotated[str, typer.Argument(help="The name; '' clears it.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Name a person (this also confirms its faces)."""
    with opened(ctx) as engine:
        summary = ops.name(engine, actor_or_fail(), person, label or None)
    if as_json:
        print_json(summary.to_dict())
    else:
        console.print(f"person {summary.id} is named {summary.name!r}", markup=False)


@app.command("reject")
@handle_errors
def reject(
    ctx: typer.Context,
    person: Annotated[int, typer.Argument(help="Person id.")],
    faces: Annotated[str, typer.Option("--faces", help="Face ids that are not this person.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Not this person: the faces leave it and never join it again."""
    with opened(ctx) as engine:
        fresh = ops.reject(engine, actor_or_fail(), person, _ids(faces))
    if as_json:
        print_json({"person_id": person, "new_people": fresh})
    else:
        console.print(f"{len(fresh)} face(s) taken out of person {person}")


@app.command("recluster")
@handle_errors
def recluster(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Group every face again, keeping every merge, split, name and rejection."""
    with opened(ctx) as engine:
        event = ops.recluster(engine, actor_or_fail())
    if as_json:
        print_json({"faces": event.faces, "people": event.people, "threshold": event.threshold})
    else:
        console.print(
            f"grouped {event.faces} faces into {event.people} people "
            f"(distance {event.threshold:.3f})"
        )
