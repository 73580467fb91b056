"""The engine end to end on real photos: ingest with provenance, search, verify."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from facetrace import (
    FaceTrace,
    ModelMismatchError,
    Settings,
    UnknownSourceError,
    UsageError,
)
from facetrace.store import schema
from tests.conftest import DLIB, FR, JOHNS
from tests.test_imaging import png_bomb


def test_obama_probe_ranks_obama_photos_above_biden(gallery: FaceTrace) -> None:
    result = gallery.search(FR / "obama2.jpg", case_id="C-1", reason="test", top_k=100)
    assert len(result.faces) == 1
    matches = result.faces[0].matches
    origins = [Path(m.provenance[0].origin).name for m in matches]
    biden_rank = origins.index("biden.jpg")
    obama_ranks = [i for i, o in enumerate(origins) if o.startswith("obama")]
    assert obama_ranks and max(obama_ranks) < biden_rank
    best = matches[0]
    assert best.distance < 0.6 < matches[biden_rank].distance
    assert best.provenance[0].source == "news"
    assert best.provenance[0].collected_at.tzinfo is not None
    assert best.thumbnail is not None and Path(best.thumbnail).is_file()
    assert 0.5 < best.score <= 1.0


@pytest.mark.parametrize("john", sorted(p.name for p in JOHNS.iterdir() if p.is_dir()))
def test_each_john_finds_his_own_photos_first(gallery: FaceTrace, john: str) -> None:
    held_out = sorted((JOHNS / john).iterdir())[0]
    result = gallery.search(held_out, case_id="C-2", reason="test", top_k=3)
    top = result.faces[0].matches
    assert all(Path(m.provenance[0].origin).parent.name == john for m in top), [
        (Path(m.provenance[0].origin).parent.name, m.distance) for m in top
    ]


def test_faceless_probe_returns_no_faces(gallery: FaceTrace) -> None:
    result = gallery.search(DLIB / "dogs.jpg", case_id="C-3", reason="test")
    assert result.faces == ()
    assert result.gallery_size == gallery.stats().faces


def test_search_needs_case_and_reason(gallery: FaceTrace) -> None:
    with pytest.raises(UsageError, match="case ID"):
        gallery.search(FR / "obama2.jpg", case_id=" ", reason="why")
    with pytest.raises(UsageError, match="reason"):
        gallery.search(FR / "obama2.jpg", case_id="C-4", reason="")


def test_search_is_recorded_before_results_return(gallery: FaceTrace) -> None:
    result = gallery.search(FR / "obama2.jpg", case_id="C-5", reason="audit check")
    from facetrace.governance.audit import AuditLog  # the engine's event sink

    rows = AuditLog(gallery.store.engine).repo.audit_rows("C-5")
    mine = [r.body for r in rows if r.kind == "search.performed"]
    assert len(mine) == 1
    assert result.probe_sha256 in mine[0]
    assert "audit check" in mine[0]


def test_verify_same_and_different(gallery: FaceTrace) -> None:
    same = gallery.verify(FR / "obama.jpg", FR / "obama2.jpg")
    diff = gallery.verify(FR / "obama.jpg", FR / "biden.jpg")
    assert same.same_person and not diff.same_person
    assert same.distance < diff.distance


def test_verify_without_a_face_is_a_clear_error(gallery: FaceTrace) -> None:
    with pytest.raises(UsageError, match="no face found in the second photo"):
        gallery.verify(FR / "obama.jpg", DLIB / "dogs.jpg")


def test_bad_files_are_reported_and_the_rest_of_the_batch_is_ingested(
    engine: FaceTrace, tmp_path: Path
) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(FR / "obama.jpg", batch / "a_good.jpg")
    (batch / "b_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40)
    (batch / "c_not_an_image.jpg").write_text("hello, I am a text file\n")
    (batch / "d_bomb.png").write_bytes(png_bomb())
    data = (FR / "biden.jpg").read_bytes()
    (batch / "e_truncated.jpg").write_bytes(data[: len(data) // 3])
    shutil.copy(FR / "two_people.jpg", batch / "f_good.jpg")
    engine.add_source("s", lawful_basis="test")
    summary = engine.ingest([batch], source="s")
    assert summary.photos_seen == 6
    assert summary.photos_added == 2
    assert summary.faces_added == 3
    errors = {Path(e.item).name: e.error for e in summary.errors}
    assert set(errors) == {"b_corrupt.jpg", "c_not_an_image.jpg", "d_bomb.png", "e_truncated.jpg"}
    assert "not a supported image" in errors["c_not_an_image.jpg"]
    assert "pixel limit" in errors["d_bomb.png"]
    assert "truncated or corrupt" in errors["e_truncated.jpg"]
    assert engine.stats().faces == engine.index.count() == 3


def test_same_photo_from_two_sources_is_stored_once_with_both_sightings(
    engine: FaceTrace, tmp_path: Path
) -> None:
    copy = tmp_path / "elsewhere" / "renamed.jpg"
    copy.parent.mkdir()
    shutil.copy(FR / "obama.jpg", copy)
    engine.add_source("archive-a", lawful_basis="test")
    engine.add_source("archive-b", lawful_basis="test", jurisdiction="GB")
    first = engine.ingest([FR / "obama.jpg"], source="archive-a")
    second = engine.ingest([copy], source="archive-b")
    again = engine.ingest([FR / "obama.jpg"], source="archive-a")
    assert (first.photos_added, second.photos_added, again.photos_added) == (1, 0, 0)
    assert second.duplicates == 1 and again.duplicates == 1
    stats = engine.stats()
    assert (stats.photos, stats.faces, stats.indexed) == (1, 1, 1)
    result = engine.search(FR / "obama2.jpg", case_id="C", reason="r")
    prov = result.faces[0].matches[0].provenance
    assert {(p.source, Path(p.origin).name) for p in prov} == {
        ("archive-a", "obama.jpg"),
        ("archive-b", "renamed.jpg"),
    }


def test_unregistered_source_is_refused_with_instructions(engine: FaceTrace) -> None:
    with pytest.raises(UnknownSourceError, match="facetrace sources add nowhere --basis"):
        engine.ingest([FR / "obama.jpg"], source="nowhere")
    assert engine.stats().photos == 0


def test_source_needs_a_lawful_basis(engine: FaceTrace) -> None:
    with pytest.raises(UsageError, match="lawful basis"):
        engine.add_source("x", lawful_basis="  ")


def test_reconcile_repairs_an_index_that_lost_vectors(settings: Settings) -> None:
    with FaceTrace.open(settings) as ft:
        ft.add_source("s", lawful_basis="test")
        ft.ingest([FR / "two_people.jpg", FR / "obama.jpg"], source="s")
        ids = ft.store.face_ids()
        # Simulate a crash after commit but before the index was saved.
        ft.index.remove(ids[:2])
        ft.index.add(np.array([999_999]), np.zeros((1, 128), np.float32))
        ft.index.save()
    with FaceTrace.open(settings) as ft:
        assert sorted(ft.index.ids().tolist()) == sorted(ids.tolist())


def test_model_mismatch_is_a_clear_error(settings: Settings) -> None:
    with FaceTrace.open(settings) as ft:
        ft.add_source("s", lawful_basis="test")
        ft.ingest([FR / "obama.jpg"], source="s")
        with ft.store.engine.begin() as conn:
            conn.execute(schema.faces.update().values(model_id="some-other-model"))
    with pytest.raises(ModelMismatchError, match="some-other-model"):
        FaceTrace.open(settings)


def test_parallel_ingest_matches_serial(tmp_path: Path) -> None:
    files = [p for p in sorted((JOHNS / "John_Simm").iterdir())][:6]
    files.append(files[0])  # the same photo twice in one batch
    results = {}
    for workers in (1, 2):
        s = Settings(home=tmp_path / f"w{workers}", workers=workers)
        with FaceTrace.open(s) as ft:
            ft.add_source("s", lawful_basis="test")
            summary = ft.ingest(files, source="s")
            results[workers] = (summary.photos_added, summary.duplicates, summary.faces_added)
            assert ft.stats().indexed == summary.faces_added
    assert results[1] == results[2] == (6, 1, 6)


def test_parallel_ingest_reports_every_copy_of_a_failing_photo(tmp_path: Path) -> None:
    """Byte-identical copies wait for the first to be stored; if it fails, each copy
    is still analysed and reported, never dropped silently."""
    batch = tmp_path / "batch"
    batch.mkdir()
    data = (FR / "biden.jpg").read_bytes()
    for name in ("a_truncated.jpg", "b_same_bytes.jpg"):
        (batch / name).write_bytes(data[: len(data) // 3])
    shutil.copy(FR / "obama.jpg", batch / "c_good.jpg")
    with FaceTrace.open(Settings(home=tmp_path / "home", workers=2)) as ft:
        ft.add_source("s", lawful_basis="test")
        summary = ft.ingest([batch], source="s")
    assert summary.photos_seen == 3 and summary.photos_added == 1
    assert sorted(Path(e.item).name for e in summary.errors) == [
        "a_truncated.jpg",
        "b_same_bytes.jpg",
    ]
