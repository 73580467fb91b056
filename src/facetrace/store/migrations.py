"""Ordered schema migrations, applied on open inside one transaction each.

A migration is ``(version, description, apply)``; ``apply`` receives a
connection. Append new migrations at the end, never edit an applied one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, inspect, select

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


MIGRATIONS: list[Migration] = [
    Migration(
        1, "sources, photos, sightings, faces, ingest errors", _create(*schema.MIGRATION_1_TABLES)
    ),
    Migration(2, "ingest jobs and their items", _create(*schema.MIGRATION_2_TABLES)),
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
