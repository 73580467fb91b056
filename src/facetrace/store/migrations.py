"""Ordered schema migrations, applied on open inside one transaction each.

A migration is ``(version, description, apply)``; ``apply`` receives a
connection. Append new migrations at the end, never edit an applied one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, MetaData, inspect, select
from sqlalchemy.schema import CreateTable

from facetrace.store import schema


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _create(*tables: object) -> Callable[[Connection], None]:
    def apply(conn: Connection) -> None:
        schema.metadata.create_all(conn, tables=list(tables))  # type: ignore[arg-type]

    return apply


def _faces_never_reuse_ids(conn: Connection) -> None:
    """Rebuild an SQLite ``faces`` table as AUTOINCREMENT, keeping every row and id.

    Ids deleted before this runs cannot be known, so only later deletions are covered.
    The first statement that writes (the copy) opens the transaction; the table made
    before it is dropped first if an interrupted run left it behind.
    """
    if conn.dialect.name != "sqlite":
        return  # sequences never hand an id out twice
    ddl = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'faces'"
    ).scalar()
    if ddl is None or "AUTOINCREMENT" in ddl.upper():
        return
    meta = MetaData()
    schema.photos.to_metadata(meta)  # the table faces' foreign key names
    new = schema.faces.to_metadata(meta, name="faces_rebuilt")
    columns = ", ".join(f'"{c.name}"' for c in schema.faces.columns)
    conn.exec_driver_sql("DROP TABLE IF EXISTS faces_rebuilt")
    conn.execute(CreateTable(new))
    conn.exec_driver_sql(f"INSERT INTO faces_rebuilt ({columns}) SELECT {columns} FROM faces")
    conn.exec_driver_sql("DROP TABLE faces")
    conn.exec_driver_sql("ALTER TABLE faces_rebuilt RENAME TO faces")
    for index in schema.faces.indexes:
        index.create(conn)


MIGRATIONS: list[Migration] = [
    Migration(
        1, "sources, photos, sightings, faces, ingest errors", _create(*schema.MIGRATION_1_TABLES)
    ),
    Migration(2, "ingest jobs and their items", _create(*schema.MIGRATION_2_TABLES)),
    # 10 is governance's (registered by facetrace.governance.schema); versions only grow.
    Migration(11, "face ids are never reused (SQLite AUTOINCREMENT)", _faces_never_reuse_ids),
]


def register(migration: Migration) -> None:
    """Append a migration (used by modules that own their tables, e.g. governance)."""
    if any(m.version == migration.version for m in MIGRATIONS):
        return
    MIGRATIONS.append(migration)
    MIGRATIONS.sort(key=lambda m: m.version)


def current_version(engine: Engine) -> int:
    """Highest applied migration, 0 for an empty database."""
    if not inspect(engine).has_table("schema_migrations"):
        return 0
    with engine.connect() as conn:
        versions = conn.execute(select(schema.schema_migrations.c.version)).scalars().all()
    return max(versions, default=0)


def upgrade(engine: Engine) -> list[int]:
    """Apply every pending migration; returns the versions applied."""
    applied = []
    done = current_version(engine)
    for migration in MIGRATIONS:
        if migration.version <= done:
            continue
        with engine.begin() as conn:
            migration.apply(conn)
            conn.execute(
                schema.schema_migrations.insert().values(
                    version=migration.version,
                    description=migration.description,
                    applied_at=datetime.now(UTC),
                )
            )
        applied.append(migration.version)
    return applied
