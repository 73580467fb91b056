"""Schema migrations, run by Alembic (``store/alembic``) when a store opens.

Revisions 0001-0015 are the migrations of the runner used before Alembic, each a
``(version, description, apply)`` here (or registered by the module that owns its
tables); their Alembic revisions call :func:`legacy`. New migrations are Alembic
revisions (batch mode rebuilds SQLite tables); never edit an applied one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData, inspect, select
from sqlalchemy.schema import CreateTable

from facetrace.errors import StoreError
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


def legacy(version: int) -> Callable[[Connection], None]:
    """The apply function of migration ``version`` (the Alembic revision of the same
    number calls it)."""
    _register_all()
    for migration in MIGRATIONS:
        if migration.version == version:
            return migration.apply
    raise KeyError(version)


def _register_all() -> None:
    """Import the modules that register their own migrations."""
    import facetrace.governance.schema
    import facetrace.identity.schema  # noqa: F401


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "alembic"))
    config.attributes["connection"] = connection
    return config


def current_version(engine: Engine) -> int:
    """The applied revision's number (0 for an empty database)."""
    with engine.connect() as conn:
        if inspect(conn).has_table("alembic_version"):
            value = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            return int(value) if value else 0
        return _legacy_version(conn)


def _legacy_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_migrations"):
        return 0
    versions = conn.execute(select(schema.schema_migrations.c.version)).scalars().all()
    return max(versions, default=0)


def upgrade(engine: Engine) -> tuple[int, int]:
    """Bring the database to the newest revision with Alembic; returns the revision
    numbers before and after. A gallery made by the runner before Alembic is first
    stamped with the revision of its last migration, so it upgrades in place. On SQLite,
    foreign keys are off while tables are rebuilt, and every key is checked after an
    upgrade that applied something (not on every open: the check reads every row)."""
    _register_all()
    before = current_version(engine)
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside any transaction
            conn.commit()
        try:
            config = _alembic_config(conn)
            legacy_at = _legacy_version(conn)
            if legacy_at and not inspect(conn).has_table("alembic_version"):
                command.stamp(config, f"{legacy_at:04d}")
                conn.commit()
            command.upgrade(config, "head")
            conn.commit()
            after = current_version(engine)
            if sqlite and after != before:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise StoreError(
                        f"the upgrade left {len(broken)} rows whose foreign key points "
                        "nowhere; restore the gallery from its backup"
                    )
        finally:
            if sqlite:
                conn.rollback()
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
    return before, after
