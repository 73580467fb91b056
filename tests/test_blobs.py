"""Where thumbnails live: a folder or the metadata database, chosen by ``blob_store``.

Every node reaches the thumbnails another node ingested (through the database, or a
folder they share); takedowns, reconcile, the doctor and backups go through the same
interface; both stores behave alike (congruence), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine, func, inspect, select

from facetrace import FaceTrace, NotFoundError, Settings
from facetrace.config import BlobStoreKind
from facetrace.evaluation.calibration import (
    Calibration,
    build_calibration,
    save_calibration,
    table_blob,
)
from facetrace.governance.backup import backup, restore
from facetrace.governance.doctor import Check, examine
from facetrace.governance.takedown import takedown_source
from facetrace.operations import gallery
from facetrace.store import schema
from facetrace.store.blobs import BlobStore, DatabaseBlobs, FolderBlobs, blob_store_kind
from facetrace.store.repository import Store
from facetrace.vision.analyzer import FaceAnalyzer
from tests.conftest import FR
from tests.governance.conftest import ADMIN, task

PHOTOS = [FR / "obama.jpg", FR / "two_people.jpg"]


def _settings(home: Path, database_url: str | None, **values: object) -> Settings:
    return Settings(
        home=home,
        workers=1,
        match_threshold=0.6,
        database_url=database_url,
        **values,  # type: ignore[arg-type]
    )


def _ingested(settings: Settings, analyzer: FaceAnalyzer) -> FaceTrace:
    ft = FaceTrace.open(settings, analyzer=analyzer)
    ft.add_source("news", lawful_basis="t")
    summary = ft.ingest_tasks([task(p, str(p)) for p in PHOTOS], source="news", workers=1)
    assert summary.faces_added == 3 and not summary.errors
    return ft


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.blobs)).scalar() or 0)


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _is_thumbnail(data: bytes | None, side: int) -> bool:
    assert data is not None and data[:3] == b"\xff\xd8\xff"
    return max(Image.open(io.BytesIO(data)).size) <= side


@pytest.mark.parametrize("blob_store", ["auto", "folder", "database"])
def test_ingest_writes_thumbnails_into_the_chosen_store(
    tmp_path: Path, analyzer: FaceAnalyzer, database_url: str | None, blob_store: str
) -> None:
    settings = _settings(tmp_path / "home", database_url, blob_store=blob_store)
    with _ingested(settings, analyzer) as ft:
        kind = blob_store_kind(settings, ft.store.engine)
        if blob_store == "auto":  # folder beside SQLite, database beside PostgreSQL
            server = ft.store.engine.dialect.name != "sqlite"
            assert kind is (BlobStoreKind.DATABASE if server else BlobStoreKind.FOLDER)
        names = ft.store.thumbnails()
        assert len(names) == 3 and ft.blobs.names() == names
        assert all(_is_thumbnail(ft.blobs.get(n), settings.thumbnail_px) for n in names)
        in_folder = _files(ft.home / "thumbs") if (ft.home / "thumbs").exists() else set()
        if kind is BlobStoreKind.DATABASE:
            assert in_folder == set() and _rows(ft.store.engine) == 3
            assert isinstance(ft.blobs, DatabaseBlobs)
        else:
            assert {f"thumbs/{n}" for n in in_folder} == names and _rows(ft.store.engine) == 0
            assert isinstance(ft.blobs, FolderBlobs)
        # Every reader goes through the store: the API's thumbnail, and search results.
        face = int(ft.store.face_ids()[0])
        assert gallery.thumbnail(ft, ADMIN, face) == ft.blobs.get(
            ft.store.faces([face])[face].thumbnail or ""
        )
        match = ft.search(PHOTOS[0], case_id="C", reason="r").faces[0].matches[0]
        assert match.thumbnail is not None
        if kind is BlobStoreKind.DATABASE:
            assert match.thumbnail.startswith("database:thumbs/")
        else:
            assert Path(match.thumbnail).is_file()


@pytest.mark.parametrize("shared", ["database", "folder"])
def test_another_node_reads_the_thumbnails_and_sees_them_taken_down(
    tmp_path: Path, analyzer: FaceAnalyzer, database_url: str | None, shared: str
) -> None:
    """Two nodes: each its own empty home, one metadata database; thumbnails in that
    database, or in a folder both mount (as NFS would be)."""
    url = database_url or f"sqlite:///{(tmp_path / 'meta.db').resolve()}"
    values: dict[str, object] = {"blob_store": shared}
    if shared == "folder":
        values["blob_dir"] = tmp_path / "shared-blobs"
    first = _ingested(_settings(tmp_path / "node1", url, **values), analyzer)
    faces = [int(i) for i in first.store.face_ids()]
    with FaceTrace.open(_settings(tmp_path / "node2", url, **values), analyzer=analyzer) as other:
        assert not (tmp_path / "node2" / "thumbs").exists()
        assert not (tmp_path / "node1" / "thumbs").exists()  # nothing on a node's own disk
        for face in faces:
            data = gallery.thumbnail(other, ADMIN, face)
            assert data == gallery.thumbnail(first, ADMIN, face)
            assert _is_thumbnail(data, other.settings.thumbnail_px)
        receipt = takedown_source(first, ADMIN, "news")
        assert receipt.removed["thumbnails"] == 3 and receipt.storage_scrubbed
        for face in faces:
            with pytest.raises(NotFoundError):
                gallery.thumbnail(other, ADMIN, face)
        assert other.blobs.names() == set() and _rows(other.store.engine) == 0
    first.close()


def _table(model_id: str, seed: int) -> Calibration:
    rng = np.random.default_rng(seed)
    return build_calibration(
        model_id, rng.uniform(0.45, 1.2, 5_000), rng.uniform(0.2, 0.6, 500), dataset="synthetic"
    )


@pytest.mark.parametrize("shared", ["database", "folder"])
def test_every_node_searches_with_the_calibration_one_node_made(
    tmp_path: Path, analyzer: FaceAnalyzer, database_url: str | None, shared: str
) -> None:
    """``eval calibrate`` on one node changes the false-match rates on every node."""
    url = database_url or f"sqlite:///{(tmp_path / 'meta.db').resolve()}"
    values: dict[str, object] = {"blob_store": shared}
    if shared == "folder":
        values["blob_dir"] = tmp_path / "shared-blobs"
    first = _ingested(_settings(tmp_path / "node1", url, **values), analyzer)
    packaged = first.calibration
    assert packaged is not None  # the table that ships with the model
    table = _table(analyzer.model_id, seed=1)
    where = save_calibration(table, first.blobs)
    assert where == first.blobs.locate(table_blob(analyzer.model_id))
    first.reconcile()  # a table is no orphan thumbnail
    with FaceTrace.open(_settings(tmp_path / "node2", url, **values), analyzer=analyzer) as other:
        got = other.calibration
        assert got is not None and got.to_dict() == table.to_dict() != packaged.to_dict()
        assert got.false_match_rate(0.5) != packaged.false_match_rate(0.5)
    assert not (tmp_path / "node1" / "calibration").exists()  # on no node's own disk
    assert not (tmp_path / "node2" / "calibration").exists()
    first.close()


@pytest.mark.parametrize("blob_store", ["folder", "database"])
def test_reconcile_deletes_orphan_blobs_and_keeps_the_rest(
    tmp_path: Path, analyzer: FaceAnalyzer, database_url: str | None, blob_store: str
) -> None:
    settings = _settings(tmp_path / "home", database_url, blob_store=blob_store)
    with _ingested(settings, analyzer) as ft:
        kept = ft.store.thumbnails()
        # As an ingest killed after writing its files, or a purge killed after deleting
        # its rows, leaves them.
        ft.blobs.put({"thumbs/ab/orphan_0.jpg": b"\xff\xd8 orphan", "thumbs/ab/x.tmp": b"."})
        assert ft.orphan_thumbnails() == ["thumbs/ab/orphan_0.jpg", "thumbs/ab/x.tmp"]
        report = ft.reconcile()
        assert report.thumbnails_removed == 2
        assert ft.blobs.names() == kept and not ft.orphan_thumbnails()


def test_doctor_moves_thumbnails_left_in_the_home_folder_into_the_database(
    tmp_path: Path, analyzer: FaceAnalyzer, database_url: str | None
) -> None:
    """A gallery made while thumbnails lived in each node's home, opened with them in
    the database: the doctor reports them missing, and its repair moves them."""
    home = tmp_path / "home"
    with _ingested(_settings(home, database_url, blob_store="folder"), analyzer) as ft:
        names = ft.store.thumbnails()
        before = {n: ft.blobs.get(n) for n in names}
    with FaceTrace.open(
        _settings(home, database_url, blob_store="database"), analyzer=analyzer
    ) as ft:
        found = {f.check: f for f in examine(ft, ADMIN).findings}
        missing = found[Check.MISSING_THUMBNAILS]
        assert missing.count == 3 and missing.repairable and not missing.advice
        repaired = {f.check: f for f in examine(ft, ADMIN, repair=True).findings}
        assert repaired[Check.MISSING_THUMBNAILS].remaining == 0
        assert {n: ft.blobs.get(n) for n in names} == before
        assert _files(home / "thumbs") == set()
        assert examine(ft, ADMIN).healthy


@pytest.mark.sqlite_only
@pytest.mark.parametrize(("made", "restored"), [("folder", "database"), ("database", "folder")])
def test_a_backup_restores_its_thumbnails_into_the_store_the_new_settings_choose(
    tmp_path: Path, analyzer: FaceAnalyzer, database_url: str | None, made: str, restored: str
) -> None:
    table = _table(analyzer.model_id, seed=2)
    with _ingested(_settings(tmp_path / "home", database_url, blob_store=made), analyzer) as ft:
        before = {n: ft.blobs.get(n) for n in ft.store.thumbnails()}
        save_calibration(table, ft.blobs)
        manifest = backup(ft, ADMIN, tmp_path / "backup")
    assert manifest.thumbnails_missing == 0
    assert {n for n in manifest.files if n.startswith("thumbs/")} == set(before)
    assert table_blob(analyzer.model_id) in manifest.files
    settings = _settings(tmp_path / "new", None, blob_store=restored)
    restore(tmp_path / "backup", settings, ADMIN, analyzer=analyzer)
    with FaceTrace.open(settings, analyzer=analyzer) as ft:
        assert {n: ft.blobs.get(n) for n in ft.store.thumbnails()} == before
        assert ft.calibration is not None and ft.calibration.to_dict() == table.to_dict()
        assert (restored == "folder") == (tmp_path / "new" / "thumbs").exists()
        assert examine(ft, ADMIN).healthy


# --- congruence: the two stores answer alike -----------------------------------------


@pytest.fixture(params=["folder", "database"])
def blobs(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str | None
) -> Iterator[BlobStore]:
    store = Store.open(database_url or f"sqlite:///{tmp_path / 'meta.db'}")
    try:
        yield (
            FolderBlobs(tmp_path / "blobs")
            if request.param == "folder"
            else DatabaseBlobs(store.engine)
        )
    finally:
        store.close()


def test_both_stores_put_get_replace_list_and_delete_alike(blobs: BlobStore) -> None:
    assert blobs.names() == set() and blobs.get("thumbs/ab/a.jpg") is None
    blobs.put({"thumbs/ab/a.jpg": b"one", "thumbs/cd/b.jpg": b"two"})
    blobs.put({"thumbs/ab/a.jpg": b"one, again"})  # replaced
    blobs.put({})
    assert blobs.get("thumbs/ab/a.jpg") == b"one, again"
    assert blobs.names() == {"thumbs/ab/a.jpg", "thumbs/cd/b.jpg"}
    assert blobs.locate("thumbs/ab/a.jpg").endswith("thumbs/ab/a.jpg")
    assert blobs.delete(["thumbs/ab/a.jpg", "thumbs/zz/never.jpg"]) == 1
    assert blobs.names() == {"thumbs/cd/b.jpg"} and blobs.get("thumbs/ab/a.jpg") is None


@pytest.mark.parametrize(
    "name", ["../meta.db", "thumbs/../meta.db", "/etc/passwd", "thumbs", "other/a.jpg", ""]
)
def test_a_name_that_is_not_a_blobs_is_never_read_written_or_deleted(
    blobs: BlobStore, name: str
) -> None:
    assert blobs.get(name) is None
    assert blobs.delete([name]) == 0
    with pytest.raises(ValueError, match="not a blob name"):
        blobs.put({name: b"x"})
    assert blobs.names() == set()


@pytest.mark.sqlite_only
def test_a_folder_blob_never_leads_out_of_its_folder(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not a thumbnail")
    (tmp_path / "blobs" / "thumbs").mkdir(parents=True)
    (tmp_path / "blobs" / "thumbs" / "link.jpg").symlink_to(secret)
    blobs = FolderBlobs(tmp_path / "blobs")
    assert blobs.get("thumbs/link.jpg") is None
    assert blobs.delete(["thumbs/link.jpg"]) == 0 and secret.read_text() == "not a thumbnail"


def test_a_migrated_database_has_the_tables_and_columns_of_the_schema(
    tmp_path: Path, database_url: str | None
) -> None:
    """Alembic's revisions (r0018 made ``blobs``) give what ``schema.metadata`` says."""
    import facetrace.governance.schema
    import facetrace.identity.schema  # noqa: F401  (their tables join the metadata)

    store = Store.open(database_url or f"sqlite:///{tmp_path / 'meta.db'}")
    try:
        found = inspect(store.engine)
        tables = set(found.get_table_names()) - {"alembic_version"}
        assert tables == set(schema.metadata.tables)
        for table in schema.metadata.sorted_tables:
            columns = {c["name"] for c in found.get_columns(table.name)}
            assert columns == {c.name for c in table.columns}, table.name
        blob_pk = found.get_pk_constraint("blobs")["constrained_columns"]
        assert blob_pk == ["name"]
    finally:
        store.close()
