"""Face ids are never handed out twice, on new databases and on migrated ones.

A face id is its vector's id in the index, and deletion receipts and match
confirmations name faces by id: a reused id would tie them to somebody else's face.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, create_engine, text

from facetrace.governance.repository import GovernanceStore
from facetrace.store.repository import NewFace, NewPhoto, Store
from facetrace.types import BBox

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def _add(store: Store, source_id: int, n: int, faces: int = 2) -> tuple[int, ...]:
    face = NewFace(
        bbox=BBox(0, 0, 10, 10),
        confidence=1.0,
        quality=1.0,
        landmarks=np.zeros((5, 2), np.float32),
        embedding=np.full(128, n, np.float32),
        thumbnail=None,
    )
    write = store.add_photo(
        NewPhoto(sha256=f"{n:064x}", width=10, height=10, format="JPEG", byte_size=100),
        [face] * faces,
        model_id="m",
        source_id=source_id,
        origin=f"photo{n}.jpg",
        page_url=None,
        collected_at=NOW,
        now=NOW,
    )
    return write.face_ids


def _faces_ddl(path: Path) -> str:
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'faces'")).scalar()
    engine.dispose()
    return str(ddl)


def _ddl(path: Path, table: str) -> str:
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        ddl = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table})
        value = str(ddl.scalar())
    engine.dispose()
    return value


def _made_before_alembic(conn: Connection, versions: tuple[int, ...]) -> None:
    """Make the database look as the migration runner before Alembic left it."""
    conn.execute(text("DROP TABLE alembic_version"))
    conn.execute(text("DELETE FROM schema_migrations"))
    for v in versions:
        conn.execute(
            text("INSERT INTO schema_migrations VALUES (:v, 'before Alembic', :at)"),
            {"v": v, "at": NOW},
        )


def _rebuild_without_autoincrement(conn: Connection, path: Path, table: str) -> None:
    rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY id")).all()
    indexes = (
        conn.execute(
            text(
                "SELECT sql FROM sqlite_master"
                " WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"
            ),
            {"t": table},
        )
        .scalars()
        .all()
    )
    old_ddl = _ddl(path, table).replace("AUTOINCREMENT", "")
    conn.execute(text(f"DROP TABLE {table}"))
    conn.execute(text(old_ddl))
    for row in rows:
        marks = ", ".join(f":c{i}" for i in range(len(row)))
        conn.execute(
            text(f"INSERT INTO {table} VALUES ({marks})"), {f"c{i}": v for i, v in enumerate(row)}
        )
    for index in indexes:
        conn.execute(text(index))


def _deleting_the_newest_faces_does_not_free_their_ids(store: Store, source_id: int) -> None:
    newest = _add(store, source_id, 100)
    GovernanceStore(store.engine).delete_faces(list(newest))
    again = _add(store, source_id, 101)
    assert min(again) > max(newest)


def test_new_database(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'new.db'}")
    source = store.add_source(
        "s", kind="folder", lawful_basis="test", jurisdiction=None, policy={}, now=NOW
    )
    _add(store, source.id, 1)
    _deleting_the_newest_faces_does_not_free_their_ids(store, source.id)
    store.close()
    assert "AUTOINCREMENT" in _faces_ddl(tmp_path / "new.db").upper()


def test_database_made_before_migration_11_keeps_its_faces(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = Store.open(f"sqlite:///{db}")
    source = store.add_source(
        "s", kind="folder", lawful_basis="test", jurisdiction=None, policy={}, now=NOW
    )
    kept = _add(store, source.id, 1, faces=3)
    store.close()
    # Turn it back into what migrations before 11 made: the same table without AUTOINCREMENT.
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        old_ddl = _faces_ddl(db).replace("AUTOINCREMENT", "")
        rows = conn.execute(text("SELECT * FROM faces ORDER BY id")).all()
        conn.execute(text("DROP TABLE faces"))
        conn.execute(text(old_ddl))
        for row in rows:
            marks = ", ".join(f":c{i}" for i in range(len(row)))
            conn.execute(
                text(f"INSERT INTO faces VALUES ({marks})"),
                {f"c{i}": v for i, v in enumerate(row)},
            )
        conn.execute(text("CREATE INDEX ix_faces_photo ON faces (photo_id)"))
        # ... by the runner before Alembic, which had applied migrations up to 10.
        _made_before_alembic(conn, (1, 2, 10))
    engine.dispose()
    assert "AUTOINCREMENT" not in _faces_ddl(db).upper()

    store = Store.open(f"sqlite:///{db}")  # migration 11 runs again
    assert "AUTOINCREMENT" in _faces_ddl(db).upper()
    records = store.faces(list(kept))
    assert sorted(records) == sorted(kept)
    assert all(r.photo_id == records[kept[0]].photo_id for r in records.values())
    embs = store.embeddings(list(kept), 128)
    assert all(np.array_equal(e, np.full(128, 1, np.float32)) for e in embs.values())
    _deleting_the_newest_faces_does_not_free_their_ids(store, source.id)
    store.close()


def test_gallery_made_before_alembic_upgrades_in_place_and_keeps_its_photos(
    tmp_path: Path,
) -> None:
    """Revision 16 rebuilds ``photos`` with AUTOINCREMENT in Alembic's batch mode, with
    foreign keys off: the faces and sightings that point at the photos stay."""
    db = tmp_path / "old.db"
    store = Store.open(f"sqlite:///{db}")
    source = store.add_source(
        "s", kind="folder", lawful_basis="test", jurisdiction=None, policy={}, now=NOW
    )
    kept = [_add(store, source.id, n, faces=2) for n in (1, 2, 3)]
    store.close()
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:  # foreign keys are off on this plain engine
        _rebuild_without_autoincrement(conn, db, "photos")
        _made_before_alembic(conn, (1, 2, 10, 11, 12, 13, 14, 15))
        counts = {
            t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("photos", "faces", "sightings")
        }
    engine.dispose()
    assert "AUTOINCREMENT" not in _ddl(db, "photos").upper()

    store = Store.open(f"sqlite:///{db}")  # stamped at 15, then revision 16 runs
    assert "AUTOINCREMENT" in _ddl(db, "photos").upper()
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0019"
        for table, n in counts.items():
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == n
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
    records = store.faces([f for faces in kept for f in faces])
    assert len(records) == 6 and len({r.photo_id for r in records.values()}) == 3
    # The newest photo goes; its id is not handed out again.
    newest = max(r.photo_id for r in records.values())
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM photos WHERE id = :i"), {"i": newest})
    again = store.faces(list(_add(store, source.id, 9)))
    assert min(r.photo_id for r in again.values()) > newest
    store.close()
