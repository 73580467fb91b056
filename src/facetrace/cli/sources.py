"""``facetrace sources``: register and inspect where photos come from."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from facetrace import operations as ops
from facetrace.cli.common import console, handle_errors, opened, print_json
from facetrace.cli.governance import actor_or_fail
from facetrace.errors import UsageError
from facetrace.ingest.fetch.policy import SourcePolicy
from facetrace.store.repository import SourceRecord

app = typer.Typer(
    help="Register, change and list sources (each with a lawful basis).", no_args_is_help=True
)

#: Stored policy key -> its option on ``sources add`` and ``sources set``: every
#: :class:`SourcePolicy` field and ``retention_days`` (a test keeps this complete).
POLICY_OPTIONS: dict[str, str] = {
    "allowed_hosts": "--allow-host",
    "url_prefixes": "--url-prefix",
    "denied_hosts": "--deny-host",
    "max_depth": "--max-depth",
    "max_pages": "--max-pages",
    "rate_limit": "--rate-limit",
    "max_concurrency_per_host": "--max-concurrency-per-host",
    "max_bytes": "--max-bytes",
    "timeout": "--timeout",
    "retention_days": "--retention-days",
}

_D = SourcePolicy()
AllowHost = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-host",
        metavar="HOST",
        help="Host to collect from, subdomains included (repeat for several). "
        "None given: any host (the deny list and SSRF guard still apply).",
    ),
]
UrlPrefix = Annotated[
    list[str] | None,
    typer.Option(
        "--url-prefix",
        metavar="URL",
        help="Collect only URLs starting with this prefix, e.g. https://example.org/people/ "
        "(repeat for several).",
    ),
]
DenyHost = Annotated[
    list[str] | None,
    typer.Option(
        "--deny-host",
        metavar="HOST",
        help="Host never to fetch, on top of the built-in deny list (repeat for several).",
    ),
]
MaxDepth = Annotated[
    int | None,
    typer.Option(
        "--max-depth",
        metavar="N",
        help=f"Link hops followed from a listed page; 0 = only listed URLs (default "
        f"{_D.max_depth}).",
    ),
]
MaxPages = Annotated[
    int | None,
    typer.Option(
        "--max-pages",
        metavar="N",
        help=f"Most HTML pages fetched for one listed URL (default {_D.max_pages}).",
    ),
]
RateLimit = Annotated[
    float | None,
    typer.Option(
        "--rate-limit",
        metavar="PER_S",
        help=f"Requests per second to one host, > 0 (default {_D.rate_limit:g}).",
    ),
]
MaxConcurrency = Annotated[
    int | None,
    typer.Option(
        "--max-concurrency-per-host",
        metavar="N",
        help=f"Requests in flight at once to one host (default {_D.max_concurrency_per_host}).",
    ),
]
MaxBytes = Annotated[
    int | None,
    typer.Option(
        "--max-bytes",
        metavar="BYTES",
        help=f"Largest response body read; a larger one is refused (default {_D.max_bytes}).",
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        help=f"Time for one whole request, connect to last byte (default {_D.timeout:g}).",
    ),
]
RetentionDays = Annotated[
    float | None,
    typer.Option(
        "--retention-days",
        metavar="DAYS",
        help="Delete what this source yields after this many days ('retention run').",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the source as JSON.")]


def _policy_values(
    allow_host: list[str] | None,
    url_prefix: list[str] | None,
    deny_host: list[str] | None,
    max_depth: int | None,
    max_pages: int | None,
    rate_limit: float | None,
    max_concurrency_per_host: int | None,
    max_bytes: int | None,
    timeout: float | None,
    retention_days: float | None,
) -> dict[str, Any]:
    """The policy settings given on the command line, by stored key."""
    given: dict[str, Any] = {
        "allowed_hosts": allow_host or None,
        "url_prefixes": url_prefix or None,
        "denied_hosts": deny_host or None,
        "max_depth": max_depth,
        "max_pages": max_pages,
        "rate_limit": rate_limit,
        "max_concurrency_per_host": max_concurrency_per_host,
        "max_bytes": max_bytes,
        "timeout": timeout,
        "retention_days": retention_days,
    }
    return {k: v for k, v in given.items() if v is not None}


def _show(record: SourceRecord) -> None:
    for key, value in record.to_dict().items():
        if isinstance(value, dict):
            console.print(f"{key}:")
            for k, v in value.items():
                console.print(f"  {k}: {v}", highlight=False)
        else:
            console.print(f"{key}: {value}", highlight=False)


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
    allow_host: AllowHost = None,
    url_prefix: UrlPrefix = None,
    deny_host: DenyHost = None,
    max_depth: MaxDepth = None,
    max_pages: MaxPages = None,
    rate_limit: RateLimit = None,
    max_concurrency_per_host: MaxConcurrency = None,
    max_bytes: MaxBytes = None,
    timeout: Timeout = None,
    retention_days: RetentionDays = None,
    visibility: Annotated[
        str,
        typer.Option(
            "--visibility",
            help="private (your organisation alone sees what it collects) or shared "
            "(every organisation does).",
        ),
    ] = "private",
    as_json: AsJson = False,
) -> None:
    """Register a source of your organisation with its lawful basis and collection policy."""
    policy = _policy_values(
        allow_host,
        url_prefix,
        deny_host,
        max_depth,
        max_pages,
        rate_limit,
        max_concurrency_per_host,
        max_bytes,
        timeout,
        retention_days,
    )
    with opened(ctx) as engine:
        record = ops.sources.add(
            engine,
            actor_or_fail(),
            name,
            lawful_basis=basis,
            kind=kind,
            jurisdiction=jurisdiction,
            policy=policy,
            visibility=visibility,
        )
    if as_json:
        print_json(record.to_dict())
    else:
        console.print(f"registered source {record.name!r} ({record.kind}, {record.visibility})")


@app.command("set")
@handle_errors
def set_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Source name.")],
    basis: Annotated[
        str | None, typer.Option("--basis", help="New lawful basis for collecting.")
    ] = None,
    jurisdiction: Annotated[
        str | None,
        typer.Option("--jurisdiction", help="New jurisdiction code; '' clears it."),
    ] = None,
    allow_host: AllowHost = None,
    url_prefix: UrlPrefix = None,
    deny_host: DenyHost = None,
    max_depth: MaxDepth = None,
    max_pages: MaxPages = None,
    rate_limit: RateLimit = None,
    max_concurrency_per_host: MaxConcurrency = None,
    max_bytes: MaxBytes = None,
    timeout: Timeout = None,
    retention_days: RetentionDays = None,
    reset: Annotated[
        list[str] | None,
        typer.Option(
            "--reset",
            metavar="OPTION",
            help="Return a policy setting to its default, named by its option without "
            "dashes, e.g. --reset allow-host (repeat for several).",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Change the given settings of a source and keep the others (audited).

    A repeatable option given here replaces the whole list, e.g. every --allow-host.
    """
    changes: dict[str, Any] = _policy_values(
        allow_host,
        url_prefix,
        deny_host,
        max_depth,
        max_pages,
        rate_limit,
        max_concurrency_per_host,
        max_bytes,
        timeout,
        retention_days,
    )
    by_option = {option.removeprefix("--"): key for key, option in POLICY_OPTIONS.items()}
    for option in reset or []:
        key = by_option.get(option.strip().removeprefix("--"))
        if key is None:
            raise UsageError(f"--reset takes one of {', '.join(sorted(by_option))}, not {option!r}")
        if key in changes:
            raise UsageError(f"{POLICY_OPTIONS[key]} is both set and reset")
        changes[key] = None
    with opened(ctx) as engine:
        record = ops.sources.update(
            engine,
            actor_or_fail(),
            name,
            lawful_basis=basis,
            jurisdiction=jurisdiction,
            policy_changes=changes,
        )
    if as_json:
        print_json(record.to_dict())
    else:
        _show(record)


@app.command("list")
@handle_errors
def list_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the sources your organisation sees: its own and the shared ones."""
    with opened(ctx) as engine:
        records = ops.sources.list_sources(engine, actor_or_fail())
    if as_json:
        print_json([s.to_dict() for s in records])
        return
    table = Table()
    for col in ("name", "kind", "status", "visibility", "jurisdiction", "lawful basis"):
        table.add_column(col)
    for s in records:
        table.add_row(s.name, s.kind, s.status, s.visibility, s.jurisdiction or "", s.lawful_basis)
    console.print(table)


@app.command("show")
@handle_errors
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one source with its whole collection policy (defaults included)."""
    with opened(ctx) as engine:
        record = ops.sources.show(engine, actor_or_fail(), name)
    if as_json:
        print_json(record.to_dict())
    else:
        _show(record)


@app.command("block")
@handle_errors
def block(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Block a source: nothing more is collected from it (its data stays; see takedown)."""
    with opened(ctx) as engine:
        record = ops.sources.block(engine, actor_or_fail(), name)
    if as_json:
        print_json(record.to_dict())
    else:
        console.print(f"source {record.name!r} is now blocked")
