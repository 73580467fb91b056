"""``facetrace sources``: register and inspect where photos come from."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from facetrace.cli.common import actor_name, console, handle_errors, opened, print_json
from facetrace.store.repository import SourceRecord

app = typer.Typer(
    help="Register and list sources (each with a lawful basis).", no_args_is_help=True
)


def _as_dict(s: SourceRecord) -> dict[str, object]:
    return {
        "name": s.name,
        "kind": s.kind,
        "lawful_basis": s.lawful_basis,
        "jurisdiction": s.jurisdiction,
        "status": s.status,
        "policy": s.policy,
        "created_at": s.created_at.isoformat(),
    }


@app.command("add")
@handle_errors
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Source name.")],
    basis: Annotated[
        str, typer.Option("--basis", help="Lawful basis for collecting from this source.")
    ],
    jurisdiction: Annotated[
        str | None, typer.Option("--jurisdiction", help="Jurisdiction code, e.g. GB, DE, US-CA.")
    ] = None,
    kind: Annotated[str, typer.Option("--kind", help="folder, url-list, warc or web.")] = "folder",
    retention_days: Annotated[
        float | None,
        typer.Option(
            "--retention-days",
            min=0.001,
            help="Delete what this source yields after this many days ('retention run').",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Register a source with its lawful basis."""
    with opened(ctx) as engine:
        record = engine.add_source(
            name,
            lawful_basis=basis,
            kind=kind,
            jurisdiction=jurisdiction,
            policy={"retention_days": retention_days} if retention_days is not None else None,
            actor=actor_name(),
        )
    if as_json:
        print_json(_as_dict(record))
    else:
        console.print(f"registered source {record.name!r} ({record.kind})")


@app.command("list")
@handle_errors
def list_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List registered sources."""
    with opened(ctx) as engine:
        records = engine.store.list_sources()
    if as_json:
        print_json([_as_dict(s) for s in records])
        return
    table = Table()
    for col in ("name", "kind", "status", "jurisdiction", "lawful basis"):
        table.add_column(col)
    for s in records:
        table.add_row(s.name, s.kind, s.status, s.jurisdiction or "", s.lawful_basis)
    console.print(table)


@app.command("show")
@handle_errors
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one source."""
    from facetrace.errors import UnknownSourceError

    with opened(ctx) as engine:
        record = engine.store.get_source(name)
    if record is None:
        raise UnknownSourceError(f"source {name!r} is not registered")
    if as_json:
        print_json(_as_dict(record))
    else:
        for key, value in _as_dict(record).items():
            console.print(f"{key}: {value}")


@app.command("block")
@handle_errors
def block(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Block a source: nothing more is collected from it (its data stays; see takedown)."""
    with opened(ctx) as engine:
        record = engine.set_source_status(name, "blocked", actor=actor_name())
    if as_json:
        print_json(_as_dict(record))
    else:
        console.print(f"source {record.name!r} is now blocked")
