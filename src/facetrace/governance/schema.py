"""Tables owned by governance, created by migration 10 (registered on import).

- ``audit_log``: the hash-chained audit trail (one row per event; ``body`` is the
  canonical JSON that ``hash`` covers; the other columns repeat parts of it for queries).
- ``users`` and ``api_keys``: who may act; keys are stored as SHA-256 digests only.
- ``blocked_hosts``: hosts (and their subdomains) nothing is collected from.
- ``suppression_templates``: opt-out templates, kept apart from the gallery: a random
  id and an embedding, no face, photo or request id and no timestamp; since migration
  13 also a random group id per opt-out and the row's role (the reference photo, or a
  face the opt-out reached).
- ``match_confirmations``: two-person confirmation of a match as an identification.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
)

from facetrace.store import migrations
from facetrace.store.schema import metadata

MIGRATION_VERSION = 10

organisations = Table(
    "organisations",
    metadata,
    Column("id", Integer, primary_key=True),  # 1: the operator's own, made by revision 17
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    # The row's place in the whole table (1, 2, 3 ..., never shown: it would tell one
    # organisation how much the others do). Each organisation's entries form a chain of
    # their own, numbered by ``org_seq`` (1, 2, 3 ... no gaps), which entries show.
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(60), nullable=False),
    Column("at", String(40), nullable=False),  # ISO 8601 UTC, as in the body
    Column("actor", String(200), nullable=False),
    Column("case_id", String(200), nullable=True),
    Column("body", Text, nullable=False),  # canonical JSON covered by ``hash``
    Column("hash", String(64), nullable=False),
    Column("org_id", Integer, nullable=False, server_default="1"),  # revision 17
    Column("org_seq", Integer, nullable=True),  # NULL only before revision 17 fills it
    Index("ix_audit_case", "case_id"),
    Index("uq_audit_org_seq", "org_id", "org_seq", unique=True),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("password_hash", String(200), nullable=True),  # argon2id; None: keys only
    Column("org_id", Integer, nullable=False, server_default="1"),  # revision 17
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),  # sha256 hex of the token
    Column("user_id", Integer, nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_id", String(32), nullable=False, unique=True),  # public prefix of the token
    Column("user_id", Integer, nullable=False, index=True),
    Column("digest", String(64), nullable=False),  # sha256 hex of the whole token
    Column("scopes", Text, nullable=False),  # JSON list of action values; [] = the role's
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

blocked_hosts = Table(
    "blocked_hosts",
    metadata,
    Column("host", String(255), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

suppression_templates = Table(
    "suppression_templates",
    metadata,
    Column("id", String(32), primary_key=True),  # random hex, linked to nothing
    Column("model_id", String(100), nullable=False),
    Column("embedding", LargeBinary, nullable=False),  # (dim,) float32
    # Migration 13: one opt-out's rows share a random group id; the reference photo's
    # row has role 'reference', the faces its opt-out reached 'reached'. Older rows
    # (NULL) are references, each its own group.
    Column("group_id", String(32), nullable=True),
    Column("role", String(10), nullable=True),
)

match_confirmations = Table(
    "match_confirmations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("face_id", Integer, nullable=False),
    Column("case_id", String(200), nullable=False),
    Column("proposed_by", Integer, nullable=True),  # user id; NULL = bootstrap admin
    Column("proposed_label", String(200), nullable=False),
    Column("proposed_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_by", Integer, nullable=True),
    Column("confirmed_label", String(200), nullable=True),
    Column("confirmed_at", DateTime(timezone=True), nullable=True),
    # Revision 17: a case belongs to the organisation that opened it; two organisations
    # may use the same case ID.
    Column("org_id", Integer, nullable=False, server_default="1"),
    UniqueConstraint("org_id", "face_id", "case_id", name="uq_confirmation_org"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("actor", Text, nullable=False),  # JSON: who asked, to act as them when it runs
    Column("request", Text, nullable=False),  # JSON
    Column("payload", LargeBinary, nullable=True),  # an opt-out photo, wiped once done
    Column("result", Text, nullable=True),  # JSON receipt or summary
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("org_id", Integer, nullable=False, server_default="1"),  # revision 17
    Index("ix_tasks_status", "status"),
)

TABLES = (
    organisations,
    audit_log,
    users,
    api_keys,
    blocked_hosts,
    suppression_templates,
    match_confirmations,
    sessions,
    tasks,
)


def _apply(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(TABLES))


def _migration() -> migrations.Migration:
    apply: Callable[[Connection], None] = _apply
    return migrations.Migration(MIGRATION_VERSION, "governance: audit log, access, opt-out", apply)


def _template_groups(conn: Connection) -> None:
    """Add ``group_id`` and ``role`` to a ``suppression_templates`` made before them."""
    have = {c["name"] for c in inspect(conn).get_columns("suppression_templates")}
    for name, kind in (("group_id", "VARCHAR(32)"), ("role", "VARCHAR(10)")):
        if name not in have:
            conn.exec_driver_sql(f"ALTER TABLE suppression_templates ADD COLUMN {name} {kind}")


migrations.register(_migration())


def _sign_in(conn: Connection) -> None:
    """Add ``users.password_hash`` (galleries made before it) and the ``sessions`` table."""
    have = {c["name"] for c in inspect(conn).get_columns("users")}
    if "password_hash" not in have:
        conn.exec_driver_sql("ALTER TABLE users ADD COLUMN password_hash VARCHAR(200)")
    metadata.create_all(conn, tables=[sessions])


migrations.register(
    migrations.Migration(13, "opt-out templates: the faces an opt-out reached", _template_groups)
)
migrations.register(migrations.Migration(14, "people sign in: passwords, sessions", _sign_in))
migrations.register(
    migrations.Migration(
        15,
        "background tasks: takedowns, opt-outs, URL ingests",
        lambda conn: metadata.create_all(conn, tables=[tasks]),
    )
)
