"""URL lists, WARC archives and jobs through the engine: provenance, refusals, resume."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from facetrace import FaceTrace, Settings, SourceBlockedError
from facetrace.errors import UsageError
from tests.conftest import FR
from tests.ingest.conftest import LocalServer

OBAMA = (FR / "obama.jpg").read_bytes()
BIDEN = (FR / "biden.jpg").read_bytes()


def _open(settings: Settings, **policy: object) -> FaceTrace:
    ft = FaceTrace.open(settings)
    ft.add_source(
        "web",
        kind="url-list",
        lawful_basis="targeted collection for case 12",
        policy={"rate_limit": 1000.0, "timeout": 5.0, **policy},
    )
    return ft


def test_url_list_ingest_keeps_image_and_page_urls_and_records_refusals(
    server: LocalServer, net_gallery: Settings, tmp_path: Path
) -> None:
    server.add("/robots.txt", b"User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    img = server.image("/img/obama.jpg", OBAMA)
    server.image("/private/biden.jpg", BIDEN)
    page = server.html(
        "/story.html",
        '<html><body><img src="/img/obama.jpg"><img src="/private/biden.jpg"></body></html>',
    )
    urls = tmp_path / "urls.txt"
    urls.write_text(f"# case 12\n{page}\nhttps://www.facebook.com/photo.jpg\n")
    with _open(net_gallery) as ft:
        summary = ft.ingest([urls], source="web")
        assert (summary.photos_added, summary.faces_added) == (1, 1)
        errors = {e.item: e.error for e in summary.errors}
        assert any("robots" in e for e in errors.values())
        assert "https://www.facebook.com/photo.jpg" in errors
        assert len(server.hits_for("/private/biden.jpg")) == 0
        match = ft.search(FR / "obama2.jpg", case_id="C12", reason="r").faces[0].matches[0]
        prov = match.provenance[0]
        assert (prov.source, prov.origin, prov.page_url) == ("web", img, page)
        job = ft.store.job(summary.job_id or 0)
        assert job is not None and job.status == "completed"
        assert job.item_counts.get("refused", 0) >= 2


def _warc(path: Path) -> None:
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for uri, body, date in (
            ("https://archive.example/a/obama.jpg", OBAMA, "2019-03-01T10:00:00Z"),
            ("https://archive.example/a/biden.jpg", BIDEN, "2019-03-02T11:30:00Z"),
        ):
            http = StatusAndHeaders(
                "200 OK",
                [("Content-Type", "image/jpeg"), ("Content-Length", str(len(body)))],
                protocol="HTTP/1.1",
            )
            writer.write_record(
                writer.create_warc_record(
                    uri,
                    "response",
                    payload=io.BytesIO(body),
                    http_headers=http,
                    warc_headers_dict={"WARC-Date": date},
                )
            )


def test_warc_ingest_uses_capture_dates_and_original_urls(
    net_gallery: Settings, tmp_path: Path
) -> None:
    archive = tmp_path / "crawl.warc.gz"
    _warc(archive)
    with _open(net_gallery) as ft:
        summary = ft.ingest([archive], source="web")
        assert (summary.photos_added, summary.faces_added, summary.errors) == (2, 2, ())
        match = ft.search(FR / "obama2.jpg", case_id="C", reason="r").faces[0].matches[0]
        prov = match.provenance[0]
        assert prov.origin == "https://archive.example/a/obama.jpg"
        assert prov.collected_at == datetime(2019, 3, 1, 10, 0, tzinfo=UTC)


def test_resized_copy_is_a_perceptual_duplicate(net_gallery: Settings, tmp_path: Path) -> None:
    small = tmp_path / "obama_small.jpg"
    img = Image.open(FR / "obama.jpg")
    img.thumbnail((500, 500))
    img.save(small, quality=70)
    with _open(net_gallery) as ft:
        ft.ingest([FR / "obama.jpg"], source="web")
        again = ft.ingest([small], source="web")
        assert (again.photos_added, again.duplicates) == (0, 1)
        stats = ft.stats()
        assert (stats.photos, stats.faces) == (1, 1)
        prov = ft.search(FR / "obama2.jpg", case_id="C", reason="r").faces[0].matches[0].provenance
        assert {Path(p.origin).name for p in prov} == {"obama.jpg", "obama_small.jpg"}


def test_interrupted_job_resumes_without_rereading_done_items(
    net_gallery: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("obama.jpg", "biden.jpg", "two_people.jpg", "obama3.jpg"):
        (folder / name).write_bytes((FR / name).read_bytes())
    seen: list[str] = []

    class Stop(Exception):
        pass

    def stop_after_two(outcome: object) -> None:
        seen.append(outcome.key)  # type: ignore[attr-defined]
        if len(seen) == 2:
            raise Stop

    with _open(net_gallery) as ft:
        with pytest.raises(Stop):
            ft.ingest([folder], source="web", workers=1, on_item=stop_after_two)
        job = ft.store.jobs()[0]
        assert job.status == "interrupted"
        resumed = ft.resume_job(job.id, workers=1)
        assert resumed.photos_seen == 2  # only the two items not yet done
        assert ft.store.job(job.id).status == "completed"  # type: ignore[union-attr]
        assert ft.stats().photos == 4


def test_a_finished_job_retries_its_item_errors_only(net_gallery: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "obama.jpg").write_bytes(OBAMA)
    (folder / "biden.jpg").write_bytes(BIDEN[: len(BIDEN) // 3])  # cut short in transfer
    with _open(net_gallery) as ft:
        first = ft.ingest([folder], source="web", workers=1)
        assert [Path(e.item).name for e in first.errors] == ["biden.jpg"]
        job = ft.store.job(first.job_id or 0)
        assert job is not None and job.status == "completed"
        assert job.item_counts == {"added": 1, "error": 1}

        (folder / "biden.jpg").write_bytes(BIDEN)  # copied again, whole
        again = ft.resume_job(job.id, workers=1)
        assert (again.photos_seen, again.photos_added, again.errors) == (1, 1, ())
        job = ft.store.job(job.id)
        assert job is not None and job.status == "completed"
        assert job.item_counts == {"added": 2}
        assert ft.stats().photos == 2
        with pytest.raises(UsageError, match="already completed, with no item errors"):
            ft.resume_job(job.id, workers=1)


def test_blocked_source_collects_nothing(net_gallery: Settings) -> None:
    with _open(net_gallery) as ft:
        ft.set_source_status("web", "blocked")
        with pytest.raises(SourceBlockedError):
            ft.ingest([FR / "obama.jpg"], source="web")
        assert ft.stats().photos == 0
