"""Organisations in the engine and the store, on SQLite and PostgreSQL: a gallery made
before them upgrades into the default organisation, chains stay per organisation, and
every event lands in the acting organisation's chain."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable

import pytest
from sqlalchemy import text

from facetrace import FaceTrace
from facetrace import operations as ops
from facetrace.errors import AccessDeniedError, ConflictError
from facetrace.governance import access
from facetrace.governance.audit import AuditLog
from facetrace.governance.repository import GovernanceStore
from facetrace.governance.takedown import takedown_source
from tests.conftest import FR, JOHNS
from tests.governance.conftest import ADMIN, task


def _sqlite_rebuild(
    conn: sqlite3.Connection, table: str, drop: str, unique: tuple[str, str]
) -> None:
    """Rebuild ``table`` without column ``drop``, its unique constraint put back."""
    ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    old = re.sub(rf", \n\t{drop} [^,]*NOT NULL", "", ddl).replace(*unique)
    assert drop not in old, old
    cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != drop]
    conn.execute(re.sub(rf'CREATE TABLE "?{table}"? ', f"CREATE TABLE {table}_old ", old))
    names = ", ".join(cols)
    conn.execute(f"INSERT INTO {table}_old ({names}) SELECT {names} FROM {table}")
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"ALTER TABLE {table}_old RENAME TO {table}")


def _back_to_revision_16(ft: FaceTrace) -> None:
    """Turn a gallery into what revision 16 left: no organisations anywhere."""
    plain = [("audit_log", "org_seq"), ("audit_log", "org_id"), ("users", "org_id")]
    plain += [("tasks", "org_id")]
    if ft.store.engine.dialect.name == "sqlite":
        path = ft.store.engine.url.database
        ft.close()
        conn = sqlite3.connect(str(path), isolation_level=None)
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("BEGIN")
        _sqlite_rebuild(conn, "sources", "visibility", ("", ""))
        _sqlite_rebuild(
            conn,
            "sources",
            "owner_org",
            ("CONSTRAINT uq_source_owner_name UNIQUE (owner_org, name)", "UNIQUE (name)"),
        )
        _sqlite_rebuild(
            conn,
            "match_confirmations",
            "org_id",
            (
                "CONSTRAINT uq_confirmation_org UNIQUE (org_id, face_id, case_id)",
                "CONSTRAINT uq_confirmation UNIQUE (face_id, case_id)",
            ),
        )
        conn.execute("DROP INDEX uq_audit_org_seq")
        for table, column in plain:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("DROP TABLE organisations")
        conn.execute("UPDATE alembic_version SET version_num = '0016'")
        conn.execute("COMMIT")
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.close()
        return
    with ft.store.engine.begin() as db:
        for sql in (
            "ALTER TABLE sources DROP CONSTRAINT uq_source_owner_name",
            "ALTER TABLE sources DROP COLUMN owner_org",
            "ALTER TABLE sources DROP COLUMN visibility",
            "ALTER TABLE sources ADD CONSTRAINT sources_name_key UNIQUE (name)",
            "ALTER TABLE match_confirmations DROP CONSTRAINT uq_confirmation_org",
            "ALTER TABLE match_confirmations DROP COLUMN org_id",
            "ALTER TABLE match_confirmations ADD CONSTRAINT uq_confirmation "
            "UNIQUE (face_id, case_id)",
            "DROP INDEX uq_audit_org_seq",
            *(f"ALTER TABLE {table} DROP COLUMN {column}" for table, column in plain),
            "DROP TABLE organisations",
            "UPDATE alembic_version SET version_num = '0016'",
        ):
            db.exec_driver_sql(sql)
    ft.close()


def test_a_gallery_made_before_organisations_moves_into_the_default_one(
    open_engine: Callable[..., FaceTrace],
) -> None:
    ft = open_engine()
    ft.add_source("archive", lawful_basis="t")
    ft.ingest_tasks([task(FR / "obama.jpg", "/o.jpg")], source="archive", workers=1)
    access.add_user(ft, ADMIN, "alice", "admin")
    ft.search(FR / "obama2.jpg", case_id="C-1", reason="r")
    head = AuditLog(ft.store.engine).head()
    _back_to_revision_16(ft)

    ft = open_engine()  # revision 17 runs
    log = AuditLog(ft.store.engine)
    assert log.head() == head and log.verify().ok  # the old entries, their hashes kept
    assert [o.name for o in GovernanceStore(ft.store.engine).list_orgs()] == ["default"]
    source = ft.store.get_source("archive")
    assert source is not None and (source.owner_org, source.visibility) == (1, "private")
    alice = GovernanceStore(ft.store.engine).get_user("alice")
    assert alice is not None and alice.org_id == 1
    # A new organisation may now use the same source name; the old one keeps working.
    platform = access.authenticate(ft, access.issue_key(ft, ADMIN, "alice").token, "x")
    acme = access.authenticate(ft, ops.orgs.add(ft, platform, "acme", admin="boss").token, "x")
    ops.sources.add(ft, acme, "archive", lawful_basis="t")
    with pytest.raises(ConflictError):
        ops.sources.add(ft, platform, "archive", lawful_basis="t")
    result = ops.gallery.search(ft, platform, FR / "obama2.jpg", case_id="C-2", reason="r")
    assert result.faces[0].matches and result.gallery_size == 1
    assert (
        ops.gallery.search(ft, acme, FR / "obama2.jpg", case_id="C-2", reason="r").gallery_size == 0
    )


def test_every_event_lands_in_the_acting_organisations_chain(
    open_engine: Callable[..., FaceTrace],
) -> None:
    ft = open_engine()
    platform_key = access.add_user(ft, ADMIN, "alice", "admin").token
    platform = access.authenticate(ft, platform_key, "x")
    acme = access.authenticate(ft, ops.orgs.add(ft, platform, "acme", admin="boss").token, "x")
    log = AuditLog(ft.store.engine)
    platform_before = log.head().count
    inv = access.authenticate(ft, access.add_user(ft, acme, "ann", "investigator").token, "x")
    ops.sources.add(ft, acme, "acme-src", lawful_basis="t")
    ops.sources.update(ft, acme, "acme-src", jurisdiction="GB")
    photo = sorted((JOHNS / "John_Salley").glob("*.jpg"))[0]
    ops.ingest.upload(ft, acme, "acme-src", [("a.jpg", photo.read_bytes())])
    ops.gallery.search(ft, inv, FR / "obama2.jpg", case_id="A-1", reason="r")
    ops.gallery.verify(ft, inv, FR / "obama.jpg", FR / "obama2.jpg")
    issued = access.issue_key(ft, acme, "ann")
    access.revoke_key(ft, acme, issued.key.key_id)
    ops.sources.block(ft, acme, "acme-src")
    takedown_source(ft, acme, "acme-src")
    with pytest.raises(AccessDeniedError):
        ops.index.stats(ft, acme)  # refused: recorded in acme's chain too
    assert log.head().count == platform_before  # nothing of acme's in the platform's
    kinds = [e.kind for e in log.entries(org=acme.org_id)]
    for kind in (
        "user.added",
        "key.issued",
        "key.revoked",
        "source.registered",
        "source.updated",
        "ingest.completed",
        "search.performed",
        "verify.performed",
        "source.status",
        "takedown.performed",
        "access.denied",
    ):
        assert kind in kinds, (kind, kinds)
    assert log.verify(org=acme.org_id).ok and log.verify().ok
    with ft.store.engine.connect() as conn:
        orgs = {r[0] for r in conn.execute(text("SELECT DISTINCT org_id FROM audit_log"))}
    assert orgs == {1, acme.org_id}
