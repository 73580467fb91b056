"""Takedown: canary data leaves no hit and no byte; shared photos stay; re-ingest is refused."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from facetrace import FaceTrace, SourceBlockedError
from facetrace.governance.audit import AuditLog
from facetrace.governance.takedown import takedown_host, takedown_source
from facetrace.index.base import NO_RESULT
from tests.conftest import FR, JOHNS
from tests.governance.conftest import ADMIN, task

CANARY = "CANARY-7f3a9c1e-do-not-keep"


def _face_ids_of(ft: FaceTrace, sha: str) -> list[int]:
    pid = ft.store.photo_id_by_sha(sha)
    assert pid is not None
    return [
        f.id
        for f in ft.store.faces([int(i) for i in ft.store.face_ids()]).values()
        if f.photo_id == pid
    ]


def _disk_files(home: Path) -> list[Path]:
    """The database (with -wal/-shm), every index file and every thumbnail."""
    return [p for p in home.rglob("*") if p.is_file() and "models" not in p.parts]


def _occurrences(home: Path, needle: bytes) -> dict[str, int]:
    found = {}
    for path in _disk_files(home):
        n = path.read_bytes().count(needle)
        if n:
            found[str(path.relative_to(home))] = n
    return found


@pytest.mark.sqlite_only
@pytest.mark.parametrize("blob_store", ["folder", "database"])
def test_host_takedown_leaves_no_hit_and_no_bytes(
    open_engine: Callable[..., FaceTrace], blob_store: str
) -> None:
    """With blob_store=database the thumbnail's bytes are in the SQLite file until the
    takedown, and not after it."""
    ft = open_engine(blob_store=blob_store)
    ft.add_source("web", lawful_basis="test", kind="url-list")
    canary_photo = JOHNS / "John_Simm" / "000288_00470387.jpg"
    shared_photo = FR / "obama.jpg"
    other_photo = FR / "biden.jpg"
    ft.ingest_tasks(
        [
            task(
                canary_photo,
                f"https://img.canary-host.example/{CANARY}.jpg",
                page_url=f"https://canary-host.example/p/{CANARY}",
            ),
            task(shared_photo, f"https://cdn.canary-host.example/{CANARY}-shared.jpg"),
            task(shared_photo, "https://elsewhere.example/obama.jpg"),
            task(other_photo, "https://elsewhere.example/biden.jpg"),
        ],
        source="web",
        workers=1,
    )
    canary_sha = hashlib.sha256(canary_photo.read_bytes()).hexdigest()
    shared_sha = hashlib.sha256(shared_photo.read_bytes()).hexdigest()
    canary_faces = _face_ids_of(ft, canary_sha)
    assert len(canary_faces) == 1
    embedding = ft.store.embeddings(canary_faces, 128)[canary_faces[0]].copy()
    thumb = next(iter(ft.store.faces(canary_faces).values())).thumbnail
    assert thumb is not None
    thumb_bytes = ft.blobs.get(thumb)
    assert thumb_bytes is not None
    ft.index.save()
    # The canaries are on disk before the takedown (so the checks below can fail).
    assert _occurrences(ft.home, CANARY.encode())
    assert _occurrences(ft.home, embedding.tobytes())
    assert _occurrences(ft.home, thumb_bytes[-256:])
    assert (ft.home / thumb).is_file() == (blob_store == "folder")

    receipt = takedown_host(ft, ADMIN, "canary-host.example")

    # Immediately: the exact stored embedding finds nothing of it.
    distances, ids = ft.index.search(embedding.reshape(1, -1), 10)
    assert canary_faces[0] not in ids[0]
    assert not np.any((distances[0] < 1e-4) & (ids[0] != NO_RESULT))
    result = ft.search(canary_photo, case_id="C-1", reason="takedown check")
    assert all(m.face_id not in canary_faces for f in result.faces for m in f.matches)
    # No byte of it left in the database, WAL, index files or thumbnails.
    assert _occurrences(ft.home, CANARY.encode()) == {}
    assert _occurrences(ft.home, embedding.tobytes()) == {}
    assert _occurrences(ft.home, thumb_bytes[-256:]) == {}
    assert ft.blobs.get(thumb) is None and not (ft.home / thumb).exists()
    assert receipt.removed["thumbnails"] == 1
    wal = Path(str(ft.home / "facetrace.db") + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0 or CANARY.encode() not in wal.read_bytes()
    # The shared photo stays, with only its other provenance.
    shared_id = ft.store.photo_id_by_sha(shared_sha)
    assert shared_id is not None
    shared_faces = ft.store.faces(_face_ids_of(ft, shared_sha))
    origins = {p.origin for f in shared_faces.values() for p in f.provenance}
    assert origins == {"https://elsewhere.example/obama.jpg"}
    # The receipt: counts before/after, removed ids as a hash.
    assert receipt.before == {"photos": 3, "faces": 3, "sightings": 4}
    assert receipt.after == {"photos": 2, "faces": 2, "sightings": 2}
    assert receipt.removed["photos"] == 1 and receipt.removed["faces"] == 1
    assert receipt.photos_kept == 1 and receipt.blocked and receipt.storage_scrubbed
    assert len(receipt.removed_ids_sha256) == 64
    # Future collection from the host (or a subdomain) is refused, and audited.
    summary = ft.ingest_tasks(
        [task(canary_photo, f"https://x.canary-host.example/{CANARY}.jpg")], source="web", workers=1
    )
    assert summary.photos_added == 0
    assert "blocked" in summary.errors[0].error
    assert ft.store.photo_id_by_sha(canary_sha) is None
    kinds = [e.kind for e in AuditLog(ft.store.engine).entries()]
    assert kinds.index("takedown.performed") < kinds.index("ingest.refused")


def test_source_takedown_keeps_shared_photos_and_blocks_source(
    open_engine: Callable[..., FaceTrace],
) -> None:
    ft = open_engine()
    ft.add_source("bad", lawful_basis="test")
    ft.add_source("good", lawful_basis="test")
    only_bad = FR / "biden.jpg"
    shared = FR / "obama.jpg"
    ft.ingest_tasks(
        [task(only_bad, f"/archive/{CANARY}/biden.jpg"), task(shared, "/archive/bad/obama.jpg")],
        source="bad",
        workers=1,
    )
    ft.ingest_tasks([task(shared, "/archive/good/obama.jpg")], source="good", workers=1)
    bad_faces = _face_ids_of(ft, hashlib.sha256(only_bad.read_bytes()).hexdigest())
    bad_photo = ft.store.photo_id_by_sha(hashlib.sha256(only_bad.read_bytes()).hexdigest())
    bad_id = ft.store.get_source("bad").id  # type: ignore[union-attr]
    bad_thumbs = {f.thumbnail for f in ft.store.faces(bad_faces).values()}
    assert None not in bad_thumbs and bad_thumbs <= ft.blobs.names()
    with ft.store.engine.connect() as conn:
        bad_sightings = sorted(
            r[0] for r in conn.exec_driver_sql(f"SELECT id FROM sightings WHERE source_id={bad_id}")
        )

    receipt = takedown_source(ft, ADMIN, "bad")

    assert ft.store.photo_id_by_sha(hashlib.sha256(shared.read_bytes()).hexdigest()) is not None
    assert ft.store.photo_id_by_sha(hashlib.sha256(only_bad.read_bytes()).hexdigest()) is None
    assert not np.isin(bad_faces, ft.index.ids()).any()
    assert _occurrences(ft.home, CANARY.encode()) == {}
    assert receipt.removed["sightings"] == 2 and receipt.photos_kept == 1
    # Its thumbnails are gone from the blob store (files, or blobs rows on PostgreSQL).
    assert receipt.removed["thumbnails"] == len(bad_thumbs) and receipt.storage_scrubbed
    assert not bad_thumbs & ft.blobs.names()
    assert ft.blobs.names() == ft.store.thumbnails()
    # The hash is of the canonical JSON of the sorted removed ids (checkable by the requester).
    sightings_left = ft.store.faces([int(i) for i in ft.store.face_ids()])
    assert all(p.source == "good" for f in sightings_left.values() for p in f.provenance)
    expected = {"faces": sorted(bad_faces), "photos": [bad_photo], "sightings": bad_sightings}
    text = json.dumps(expected, sort_keys=True, separators=(",", ":"))
    assert receipt.removed_ids_sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert ft.store.get_source("bad").status == "blocked"  # type: ignore[union-attr]
    with pytest.raises(SourceBlockedError):
        ft.ingest_tasks([task(only_bad, "/again.jpg")], source="bad", workers=1)
