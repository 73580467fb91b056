"""``facetrace case``: an organisation's cases, as its audit trail records them, and the
case report (PDF)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from facetrace import operations as ops
from facetrace.cli.common import console, handle_errors, opened, print_json
from facetrace.cli.governance import actor_or_fail
from facetrace.errors import UsageError

app = typer.Typer(
    help="Cases: their searches, matches and confirmations, and the case report (PDF).",
    no_args_is_help=True,
)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


@app.command("list")
@handle_errors
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Your organisation's cases with a search or a confirmation, latest first."""
    with opened(ctx) as engine:
        found = ops.cases.list_cases(engine, actor_or_fail())
    if as_json:
        print_json([c.to_dict() for c in found])
        return
    table = Table("case", "searches", "last search (UTC)", "confirmations")
    for c in found:
        table.add_row(c.case_id, str(c.searches), _when(c.last_search_at), str(c.confirmations))
    console.print(table)


@app.command("show")
@handle_errors
def show(
    ctx: typer.Context,
    case: Annotated[str, typer.Argument(help="Case ID.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One case: who searched when and why, the matches with provenance and false-match
    rates, confirmations, and whether the audit chain is intact."""
    with opened(ctx) as engine:
        record = ops.cases.show(engine, actor_or_fail(), case)
    if as_json:
        print_json(record.to_dict())
        return
    console.print(f"case {record.case_id}: {record.NOTICE}", markup=False)
    for n, s in enumerate(record.searches, 1):
        console.print(
            f"search {n} (audit entry {s.seq}) at {_when(s.at)} UTC by {s.actor}: "
            f"{s.reason!r}; probe sha256 {s.probe_sha256}, {s.probe_faces} face(s); "
            f"gallery of {s.gallery_size} faces",
            markup=False,
        )
        table = Table("face", "distance", "false-match rate", "expected", "source", "origin")
        for m in s.matches:
            p = m.provenance[0] if m.provenance else None
            table.add_row(
                str(m.face_id),
                f"{m.distance:.3f}",
                f"{m.false_match_rate:.1e}" if m.false_match_rate is not None else "n/a",
                f"{m.expected_false_matches:.1e}"
                if m.expected_false_matches is not None
                else "n/a",
                p.source if p else ("" if m.present else "deleted since the search"),
                p.origin if p else "",
            )
        if s.matches:
            console.print(table)
    for c in record.confirmations:
        by = f", confirmed by {c.confirmed_by}" if c.confirmed_by else ""
        console.print(
            f"face {c.face_id}: {c.status.value} (proposed by {c.proposed_by}{by})", markup=False
        )
    check = record.verify
    if check.ok:
        console.print(f"audit chain verified: {check.entries} entries, head {check.head.hash}")
    else:
        for problem in check.problems:
            console.print(f"AUDIT CHAIN BROKEN: {problem}", markup=False)


@app.command("report")
@handle_errors
def report(
    ctx: typer.Context,
    case: Annotated[str, typer.Argument(help="Case ID.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the PDF.")],
) -> None:
    """Write the case report (PDF): probes, matches with provenance and false-match
    rates, who searched when and why, confirmations, and the audit chain's head with
    how to check it. Making it is audited."""
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name such as case.pdf")
    with opened(ctx) as engine:
        pdf = ops.cases.report(engine, actor_or_fail(), case)
    try:
        out.write_bytes(pdf)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from exc
    console.print(f"wrote the report of case {case} to {out} ({len(pdf)} bytes)", markup=False)
