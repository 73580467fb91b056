"""Opt-out: the person's faces go, their new photos are not stored or found, and the
response is the same whether or not they were in the gallery."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import inspect

from facetrace import FaceTrace
from facetrace.governance.audit import AuditLog
from facetrace.governance.optout import opt_out
from facetrace.ingest.pipeline import IngestPipeline
from facetrace.vision.analyzer import FaceAnalyzer
from facetrace.vision.imaging import decode_image
from tests.conftest import FR, JOHNS
from tests.governance.conftest import ADMIN, task

SALLEY = sorted((JOHNS / "John_Salley").glob("*.jpg"))
SIMM = sorted((JOHNS / "John_Simm").glob("*.jpg"))
SCHNEIDER = sorted((JOHNS / "John_Schneider").glob("*.jpg"))


def _embedding(analyzer: FaceAnalyzer, path: Path) -> np.ndarray:
    image = decode_image(path.read_bytes(), max_bytes=10**8, max_pixels=10**8)
    return analyzer.embed_image(image.pixels)[0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_optout_deletes_suppresses_and_filters(
    open_engine: Callable[..., FaceTrace], analyzer: FaceAnalyzer
) -> None:
    ft = open_engine()
    thr = ft.settings.optout_threshold
    ft.add_source("s", lawful_basis="t")
    gallery = SALLEY[1:6] + SIMM[1:4] + [FR / "obama.jpg"]
    ft.ingest_tasks([task(p, str(p)) for p in gallery], source="s", workers=1)
    probe = _embedding(analyzer, SALLEY[0])
    ids = [int(i) for i in ft.store.face_ids()]
    stored = ft.store.embeddings(ids, 128)
    near = {i for i, e in stored.items() if np.linalg.norm(e - probe) < thr}
    assert near  # the person is in the gallery

    receipt = opt_out(ft, ADMIN, SALLEY[0])

    left = {int(i) for i in ft.store.face_ids()}
    gone = set(ids) - left
    assert near <= gone  # everything the reference alone reaches, and more of Salley:
    assert len(gone) <= len(SALLEY[1:6])
    assert not np.isin(sorted(gone), ft.index.ids()).any()
    salley_left = {i for i in left if np.linalg.norm(stored[i] - probe) < 0.6}
    assert not salley_left & gone
    # New photos of the person are not stored at ingest; other people's are.
    newcomers = SALLEY[6:] + SIMM[4:6]
    summary = ft.ingest_tasks([task(p, "/new/" + p.name) for p in newcomers], source="s", workers=1)
    loose = ft.settings.optout_suppress_threshold
    close = [p for p in newcomers if np.linalg.norm(_embedding(analyzer, p) - probe) < loose]
    dropped = [p for p in newcomers if ft.store.photo_id_by_sha(_sha(p)) is None]
    assert close and set(close) <= set(dropped) and all(p in SALLEY for p in dropped)
    assert summary.suppressed_faces == len(dropped)
    # A face that slipped in (here: stored bypassing the suppressor) is filtered from search.
    bypass = IngestPipeline(
        settings=ft.settings,
        store=ft.store,
        index=ft.index,
        analyzer=ft.analyzer,
        home=ft.home,
        blobs=ft.blobs,
        clock=ft.clock,
    )
    bypass.run([task(close[0], "/bypass.jpg")], ft.source("s"), workers=1)
    slipped = ft.store.photo_id_by_sha(_sha(close[0]))
    assert slipped is not None
    result = ft.search(close[0], case_id="C", reason="r")
    hits = {m.photo_id for f in result.faces for m in f.matches}
    assert slipped not in hits
    assert receipt.status == "processed"


def test_response_does_not_reveal_membership(open_engine: Callable[..., FaceTrace]) -> None:
    ft = open_engine()
    ft.add_source("s", lawful_basis="t")
    ft.ingest_tasks([task(p, str(p)) for p in SALLEY[1:4]], source="s", workers=1)
    member = opt_out(ft, ADMIN, SALLEY[0]).to_dict()
    stranger = opt_out(ft, ADMIN, SCHNEIDER[0]).to_dict()
    assert member.keys() == stranger.keys()
    for key in ("status", "message"):
        assert member[key] == stranger[key]
    assert len(member["request_id"]) == len(stranger["request_id"])
    assert member["request_id"] != stranger["request_id"]
    # Internally the audit trail knows what happened.
    entries = [e for e in AuditLog(ft.store.engine).entries() if e.kind == "optout.processed"]
    assert [e.payload["faces_removed"] > 0 for e in entries] == [True, False]
    assert {e.payload["request_id"] for e in entries} == {
        member["request_id"],
        stranger["request_id"],
    }
    # Templates are kept apart: random ids and embeddings, nothing linking them to the
    # gallery or the request.
    columns = {c["name"] for c in inspect(ft.store.engine).get_columns("suppression_templates")}
    assert columns == {"id", "model_id", "embedding", "group_id", "role"}
    with ft.store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT id, group_id, role FROM suppression_templates").all()
    groups = {g for _, g, _ in rows}
    assert len(groups) == 2 and all(len(t) == 32 for t, _, _ in rows)
    assert sorted(r for _, _, r in rows).count("reference") == 2
    assert len(rows) > 2  # the member's opt-out also keeps the faces it reached
    logged = str([e.to_dict() for e in AuditLog(ft.store.engine).entries()])
    assert not any(t in logged or g in logged for t, g, _ in rows)
