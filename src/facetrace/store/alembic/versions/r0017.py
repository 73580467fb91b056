"""Organisations: everything a gallery held before moves into the default one.

- ``organisations`` is made, with organisation 1 (``default``): the operator's own.
  Its admins are the platform admins.
- ``users``, ``tasks`` and ``match_confirmations`` gain ``org_id`` (1 for every row).
- ``sources`` gain an owner (1) and a visibility (``private``: what an existing gallery
  collected stays with its operator until shared); a source name becomes unique within
  its owner, so one organisation's names never collide with, nor reveal, another's.
- ``audit_log`` gains ``org_id`` and ``org_seq``: each organisation's entries form a
  chain of their own. Entries written before are organisation 1's chain, numbered as
  they were, and their hashes still hold.

SQLite tables whose unique constraint changes are rebuilt (copied into a new table
that replaces the old one, foreign keys off as for every upgrade); on PostgreSQL the
constraints are altered in place.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import op
from sqlalchemy import Connection, MetaData, Table, UniqueConstraint, inspect, text
from sqlalchemy.schema import CreateTable

from facetrace.governance import schema as gs
from facetrace.store import schema

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("users", "org_id", "INTEGER NOT NULL DEFAULT 1"),
    ("tasks", "org_id", "INTEGER NOT NULL DEFAULT 1"),
    ("match_confirmations", "org_id", "INTEGER NOT NULL DEFAULT 1"),
    ("audit_log", "org_id", "INTEGER NOT NULL DEFAULT 1"),
    ("audit_log", "org_seq", "INTEGER"),
    ("sources", "owner_org", "INTEGER NOT NULL DEFAULT 1"),
    ("sources", "visibility", "VARCHAR(10) NOT NULL DEFAULT 'private'"),
)


def upgrade() -> None:
    conn = op.get_bind()
    schema.metadata.create_all(conn, tables=[gs.organisations])
    if conn.execute(text("SELECT count(*) FROM organisations WHERE id = 1")).scalar() == 0:
        conn.execute(
            gs.organisations.insert().values(id=1, name="default", created_at=datetime.now(UTC))
        )
        if conn.dialect.name == "postgresql":  # the id was given: move the sequence past it
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('organisations', 'id'), "
                "(SELECT max(id) FROM organisations))"
            )
    inspector = inspect(conn)
    for table, column, ddl in _COLUMNS:
        if column not in {c["name"] for c in inspector.get_columns(table)}:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")
    conn.exec_driver_sql("UPDATE audit_log SET org_seq = seq WHERE org_seq IS NULL")
    if "uq_audit_org_seq" not in {i["name"] for i in inspect(conn).get_indexes("audit_log")}:
        conn.exec_driver_sql("CREATE UNIQUE INDEX uq_audit_org_seq ON audit_log (org_id, org_seq)")
    _unique_within_org(conn, schema.sources, ["name"], "uq_source_owner_name")
    _unique_within_org(conn, gs.match_confirmations, ["face_id", "case_id"], "uq_confirmation_org")


def _unique_within_org(conn: Connection, table: Table, old: list[str], new_name: str) -> None:
    """Replace the table's unique constraint on ``old`` by the metadata's ``new_name``."""
    uniques = inspect(conn).get_unique_constraints(table.name)
    if any(u["name"] == new_name for u in uniques):
        return
    if conn.dialect.name == "sqlite":
        ddl = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :n", {"n": table.name}
        ).scalar()
        if ddl is not None and new_name in str(ddl):
            return
        meta = MetaData()
        rebuilt = table.to_metadata(meta, name=f"{table.name}_r17")
        columns = ", ".join(f'"{c.name}"' for c in table.columns)
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {rebuilt.name}")
        conn.execute(CreateTable(rebuilt))
        conn.exec_driver_sql(
            f"INSERT INTO {rebuilt.name} ({columns}) SELECT {columns} FROM {table.name}"
        )
        conn.exec_driver_sql(f"DROP TABLE {table.name}")
        conn.exec_driver_sql(f"ALTER TABLE {rebuilt.name} RENAME TO {table.name}")
        return
    for unique in uniques:
        if sorted(unique["column_names"]) == sorted(old) and unique["name"]:
            op.drop_constraint(unique["name"], table.name, type_="unique")
    constraint = next(
        c for c in table.constraints if isinstance(c, UniqueConstraint) and c.name == new_name
    )
    op.create_unique_constraint(new_name, table.name, [c.name for c in constraint.columns])
