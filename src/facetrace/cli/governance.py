"""Governance commands, and signing in.

``opened(ctx)`` (cli/common.py) calls :func:`sign_in` right after opening the engine: it
authenticates the caller (``--api-key`` / ``FACETRACE_API_KEY``, or the bootstrap admin
while no user exists). What the actor may do is checked by the operation each command
calls (:mod:`facetrace.operations`), the same for the CLI and the HTTP API.
"""

from __future__ import annotations

import json
import os
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from facetrace import operations as ops
from facetrace.cli.common import console, handle_errors, opened, print_json
from facetrace.errors import AccessDeniedError, UsageError
from facetrace.governance import access
from facetrace.governance.access import Actor, Role

if TYPE_CHECKING:
    from facetrace.app import FaceTrace

API_KEY_META = "facetrace.api_key"
API_KEY_ENV = "FACETRACE_API_KEY"

_actor: ContextVar[Actor | None] = ContextVar("facetrace_actor", default=None)


def current_actor() -> Actor | None:
    """The actor the running command signed in as (None outside a command)."""
    return _actor.get()


def _command_path(ctx: typer.Context) -> tuple[str, ...]:
    names = []
    c: typer.Context | None = ctx
    while c is not None and c.parent is not None:
        names.append(c.info_name or "")
        c = c.parent  # type: ignore[assignment]
    return tuple(reversed(names))


def sign_in(ctx: typer.Context, engine: FaceTrace) -> Actor:
    """Authenticate the caller (``--api-key`` / ``FACETRACE_API_KEY``, or the bootstrap
    admin while no user exists); audit a refusal. Permissions are the operations' to
    check. Sets :func:`current_actor` for the rest of the command."""
    from facetrace.cli.common import local_actor_name

    token = ctx.meta.get(API_KEY_META) or os.environ.get(API_KEY_ENV) or None
    try:
        actor = access.authenticate(engine, token, local_actor_name())
    except AccessDeniedError as exc:
        access.audit_refusal(engine, "unauthenticated", " ".join(_command_path(ctx)), str(exc))
        raise
    _actor.set(actor)
    return actor


def actor_or_fail() -> Actor:
    actor = current_actor()
    if actor is None:  # pragma: no cover - opened() always gates first
        raise AccessDeniedError("access denied: no authenticated actor")
    return actor


# --- takedown, opt-out, confirm ------------------------------------------------


@handle_errors
def takedown(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option("--source", help="Source name.")] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Host; its subdomains are included.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the receipt as JSON.")] = False,
) -> None:
    """Delete everything derived only from a source or host, and block it for good."""
    from facetrace.governance.takedown import takedown_host, takedown_source

    if (source is None) == (host is None):
        raise UsageError("give exactly one of --source NAME or --host DOMAIN")
    with opened(ctx) as engine:
        actor = actor_or_fail()
        receipt = (
            takedown_source(engine, actor, source)
            if source is not None
            else takedown_host(engine, actor, host or "")
        )
    if as_json:
        print_json(receipt.to_dict())
        return
    r = receipt.removed
    console.print(
        f"took down {receipt.target_kind.value} {receipt.target!r} (now blocked): removed "
        f"{r['photos']} photos, {r['faces']} faces, {r['sightings']} sightings; "
        f"{receipt.photos_kept} shared photos kept; ids sha256 {receipt.removed_ids_sha256}",
        markup=False,
    )


@handle_errors
def optout(
    ctx: typer.Context,
    photo: Annotated[Path, typer.Argument(help="A photo of the person opting out.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the receipt as JSON.")] = False,
) -> None:
    """Delete a person's faces and keep them out of future ingests and searches."""
    from facetrace.governance.optout import opt_out

    with opened(ctx) as engine:
        receipt = opt_out(engine, actor_or_fail(), photo)
    if as_json:
        print_json(receipt.to_dict())
    else:
        console.print(f"{receipt.message} (request {receipt.request_id})", markup=False)


@handle_errors
def confirm(
    ctx: typer.Context,
    face: Annotated[int, typer.Option("--face", help="Face id of the match.")],
    case: Annotated[str, typer.Option("--case", help="Case ID.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Propose, or (as a second user) confirm, a match as an identification."""
    from facetrace.governance.confirm import confirm_match

    with opened(ctx) as engine:
        result = confirm_match(engine, actor_or_fail(), face, case)
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(f"face {face} in case {case}: {result.label}", markup=False)


# --- audit -----------------------------------------------------------------------

audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)


@audit_app.command("head")
@handle_errors
def audit_head(ctx: typer.Context) -> None:
    """Print the log's head (count and hash) as JSON; keep it outside the system."""
    with opened(ctx) as engine:
        head = ops.audit.head(engine, actor_or_fail())
    print_json(head.to_dict())


@audit_app.command("verify")
@handle_errors
def audit_verify(
    ctx: typer.Context,
    anchor: Annotated[
        Path | None,
        typer.Option("--anchor", help="A head saved earlier by 'audit head' (JSON file)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the chain; exits 3 if any entry was changed, deleted, reordered or cut off."""
    from facetrace.governance.audit import AuditHead

    head = None
    if anchor is not None:
        try:
            head = AuditHead.from_dict(json.loads(anchor.read_text()))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the anchor {anchor}: {exc}") from exc
    with opened(ctx) as engine:
        report = ops.audit.verify(engine, actor_or_fail(), head)
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        console.print(f"audit log intact: {report.entries} entries, head {report.head.hash}")
    else:
        for problem in report.problems:
            console.print(f"TAMPERED: {problem}", markup=False)
    if not report.ok:
        raise typer.Exit(3)


@audit_app.command("export")
@handle_errors
def audit_export(
    ctx: typer.Context,
    case: Annotated[str, typer.Option("--case", help="Case ID.")],
) -> None:
    """Print one case's trail as JSON: its entries with their hashes and links."""
    with opened(ctx) as engine:
        exported = ops.audit.export(engine, actor_or_fail(), case)
    print_json(exported.to_dict())


# --- users and keys ----------------------------------------------------------------

users_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
orgs_app = typer.Typer(
    help="Organisations (platform admins): each sees only its own cases, probes, private "
    "sources and audit trail.",
    no_args_is_help=True,
)
keys_app = typer.Typer(help="API keys (stored hashed; shown once).", no_args_is_help=True)


def _print_key(issued: access.IssuedKey, as_json: bool) -> None:
    if as_json:
        print_json(issued.to_dict())
        return
    console.print(f"API key for {issued.user} (id {issued.key.key_id}); shown once:", markup=False)
    console.print(issued.token, markup=False)


@orgs_app.command("add")
@handle_errors
def orgs_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Organisation name.")],
    admin: Annotated[str, typer.Option("--admin", help="User name of its first admin.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create an organisation and its first admin; print the admin's API key (once)."""
    with opened(ctx) as engine:
        issued = ops.orgs.add(engine, actor_or_fail(), name, admin=admin)
    _print_key(issued, as_json)


@orgs_app.command("list")
@handle_errors
def orgs_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List organisations."""
    with opened(ctx) as engine:
        rows = [o.to_dict() for o in ops.orgs.list_orgs(engine, actor_or_fail())]
    if as_json:
        print_json(rows)
        return
    table = Table()
    for col in ("id", "name", "created"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), str(r["name"]), str(r["created_at"]))
    console.print(table)


@users_app.command("add")
@handle_errors
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option("--role", help="admin, investigator or auditor.")],
    expires_days: Annotated[
        float | None, typer.Option("--expires-days", help="First key's lifetime.")
    ] = None,
    org: Annotated[
        str | None,
        typer.Option(
            "--org", help="Organisation to add them to (platform admins; default: yours)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a user in your organisation and print their first API key (once)."""
    with opened(ctx) as engine:
        issued = access.add_user(
            engine, actor_or_fail(), name, role, expires_days=expires_days, org=org
        )
    _print_key(issued, as_json)


@users_app.command("list")
@handle_errors
def users_list(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """List users."""
    with opened(ctx) as engine:
        users = access.list_users(engine, actor_or_fail())
    rows = [u.to_dict() for u in users]
    if as_json:
        print_json(rows)
        return
    table = Table()
    for col in ("name", "role", "org", "created", "revoked"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["name"]),
            str(r["role"]),
            str(r["org_id"]),
            str(r["created_at"]),
            str(r["revoked_at"] or ""),
        )
    console.print(table)


@users_app.command("passwd")
@handle_errors
def users_passwd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name (your own, or any as an admin).")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Set a user's password, for signing in to the API and web UI (ends their sessions)."""
    from facetrace.governance.sessions import set_password

    if password_stdin:
        import sys

        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    with opened(ctx) as engine:
        set_password(engine, actor_or_fail(), name, password)
    console.print(f"password of {name!r} set", markup=False)


@users_app.command("revoke")
@handle_errors
def users_revoke(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Revoke a user and all their keys, effective immediately."""
    with opened(ctx) as engine:
        access.revoke_user(engine, actor_or_fail(), name)
    console.print(f"user {name!r} and their keys are revoked", markup=False)


@keys_app.command("add")
@handle_errors
def keys_add(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="User the key is for.")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="Allowed action (repeat); default all of the role's."),
    ] = None,
    expires_days: Annotated[float | None, typer.Option("--expires-days")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Issue an API key and print it (once)."""
    with opened(ctx) as engine:
        issued = access.issue_key(
            engine, actor_or_fail(), user, scopes=scope or (), expires_days=expires_days
        )
    _print_key(issued, as_json)


@keys_app.command("list")
@handle_errors
def keys_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List keys (ids, scopes, dates; never secrets)."""
    with opened(ctx) as engine:
        keys = access.list_keys(engine, actor_or_fail(), user)
    rows = [k.to_dict() for k in keys]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        console.print(json.dumps(r), markup=False)


@keys_app.command("revoke")
@handle_errors
def keys_revoke(ctx: typer.Context, key_id: Annotated[str, typer.Argument()]) -> None:
    """Revoke a key, effective on its next use."""
    with opened(ctx) as engine:
        access.revoke_key(engine, actor_or_fail(), key_id)
    console.print(f"key {key_id} revoked", markup=False)


# --- retention -----------------------------------------------------------------------

retention_app = typer.Typer(help="Enforce sources' retention periods.", no_args_is_help=True)


@retention_app.command("run")
@handle_errors
def retention_run(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Delete every sighting older than its source's retention_days."""
    from facetrace.governance.retention import run_retention

    with opened(ctx) as engine:
        report = run_retention(engine, actor_or_fail())
    if as_json:
        print_json(report.to_dict())
        return
    console.print(
        f"retention: {report.sightings_removed} sightings, {report.photos_removed} photos, "
        f"{report.faces_removed} faces deleted",
        markup=False,
    )


@handle_errors
def doctor(
    ctx: typer.Context,
    repair: Annotated[
        bool, typer.Option("--repair", help="Fix what the store can fix; say what it cannot.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check that the store, index, thumbnails, people, jobs and audit chain agree.

    Exits 1 while a problem remains (after --repair: one it could not fix)."""
    from facetrace.governance.doctor import examine

    with opened(ctx) as engine:
        report = examine(engine, actor_or_fail(), repair=repair)
    if as_json:
        print_json(report.to_dict())
    else:
        table = Table("check", "found", "repaired", "examples / what to do")
        for f in report.findings:
            note = "; ".join(f.examples) + (f" ({f.advice})" if f.advice else "")
            table.add_row(f.check.value, str(f.count), str(f.repaired), note)
        console.print(table)
        console.print("healthy" if report.healthy else "problems remain", markup=False)
    if not report.healthy:
        raise typer.Exit(1)


@handle_errors
def backup(
    ctx: typer.Context,
    dest: Annotated[Path, typer.Argument(help="A new (or empty) folder for the backup.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Back the gallery up, consistently even while an ingest runs."""
    from facetrace.governance.backup import backup as make_backup

    with opened(ctx) as engine:
        manifest = make_backup(engine, actor_or_fail(), dest)
    if as_json:
        print_json({k: v for k, v in manifest.to_dict().items() if k != "files"})
    else:
        console.print(
            f"backed up {len(manifest.files)} files to {dest} (audit head "
            f"{manifest.audit_count}:{manifest.audit_hash[:12]})",
            markup=False,
        )


@handle_errors
def restore(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="A folder made by 'facetrace backup'.")],
    replay_from: Annotated[
        Path | None,
        typer.Option(
            "--replay-from",
            help="The gallery home the backup came from: its later takedowns and opt-outs "
            "are re-applied.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Restore a backup into --home (which must hold no gallery)."""
    from facetrace.cli.common import local_actor_name, settings_from
    from facetrace.governance.backup import restore as do_restore

    actor = Actor(name=local_actor_name(), role=Role.ADMIN, user_id=None)
    report = do_restore(source, settings_from(ctx), actor, replay_from=replay_from)
    if as_json:
        print_json(report.to_dict())
        return
    console.print(
        f"restored {report.files} files from the backup of {report.backup_created_at}; "
        f"re-applied {len(report.takedowns)} takedowns and {report.templates} opt-out "
        f"templates ({report.faces_removed} faces removed)",
        markup=False,
    )
    for warning in report.warnings:
        console.print(f"warning: {warning}", markup=False)


def mount(app: typer.Typer) -> None:
    """Add the governance commands to the root app."""
    app.command("doctor")(doctor)
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.command("takedown")(takedown)
    app.command("optout")(optout)
    app.command("confirm")(confirm)
    app.add_typer(audit_app, name="audit")
    app.add_typer(users_app, name="users")
    app.add_typer(orgs_app, name="orgs")
    app.add_typer(keys_app, name="keys")
    app.add_typer(retention_app, name="retention")
