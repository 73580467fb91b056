"""Long operations are tasks: the request is answered at once, the task is stored
before it is acknowledged, runs on the engine in the background and is polled; a task
a stopped server left behind runs when the server starts again."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from facetrace import FaceTrace
from facetrace.api.app import create_app
from facetrace.governance import access
from facetrace.operations import tasks
from facetrace.operations.tasks import TaskKind
from facetrace.vision.analyzer import FaceAnalyzer
from tests.api.conftest import Api, Served, make_gallery
from tests.conftest import DLIB, FR


@pytest.fixture
def fresh(tmp_path: Any, analyzer: FaceAnalyzer) -> Iterator[Served]:
    settings, keys = make_gallery(tmp_path / "home", analyzer, allow_loopback=True)
    api = Api(create_app(settings, analyzer=analyzer))
    yield Served(settings, api, keys)
    api.close()


def wait(served: Served, task_id: int, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = served.api.request("GET", f"/v1/tasks/{task_id}", key=served.keys["admin"]).json()
        if task["status"] in ("completed", "failed"):
            return dict(task)
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish")


def probe_matches(served: Served) -> list[dict[str, Any]]:
    response = served.api.request(
        "POST",
        "/v1/search",
        key=served.keys["investigator"],
        files={"photo": ("p.jpg", (FR / "obama2.jpg").read_bytes(), "image/jpeg")},
        data={"case_id": "C1", "reason": "r"},
    )
    return list(response.json()["faces"][0]["matches"])


def test_a_takedown_is_a_task_with_its_receipt(fresh: Served) -> None:
    assert probe_matches(fresh)
    started = fresh.api.request(
        "POST", "/v1/takedowns", key=fresh.keys["admin"], json={"source": "s1"}
    )
    assert started.status_code == 202 and started.json()["status"] == "queued"
    task = wait(fresh, started.json()["task_id"])
    assert task["status"] == "completed", task
    assert task["result"]["removed"]["faces"] == 1 and task["result"]["removed_ids_sha256"]
    assert probe_matches(fresh) == []
    source = fresh.api.request("GET", "/v1/sources/s1", key=fresh.keys["admin"]).json()
    assert source["status"] == "blocked"


def test_an_optout_task_deletes_and_wipes_the_photo(fresh: Served) -> None:
    photo = (FR / "obama2.jpg").read_bytes()
    started = fresh.api.request(
        "POST",
        "/v1/optout",
        key=fresh.keys["admin"],
        files={"photo": ("me.jpg", photo, "image/jpeg")},
    )
    assert started.status_code == 202
    task = wait(fresh, started.json()["task_id"])
    assert task["status"] == "completed" and task["result"]["status"] == "processed"
    assert probe_matches(fresh) == []
    with FaceTrace.open(fresh.settings) as ft, ft.store.engine.connect() as conn:
        payloads = conn.exec_driver_sql("SELECT payload FROM tasks").scalars().all()
    assert payloads == [None]  # the photo is not kept once processed


def test_a_failed_task_says_why(fresh: Served) -> None:
    dogs = DLIB / "dogs.jpg"
    started = fresh.api.request(
        "POST",
        "/v1/optout",
        key=fresh.keys["admin"],
        files={"photo": (dogs.name, dogs.read_bytes(), "image/jpeg")},
    )
    task = wait(fresh, started.json()["task_id"])
    assert task["status"] == "failed" and "no face found" in task["error"]


def test_a_takedown_of_an_unknown_source_is_refused_at_once(fresh: Served) -> None:
    started = fresh.api.request(
        "POST", "/v1/takedowns", key=fresh.keys["admin"], json={"source": "no-such-source"}
    )
    assert started.status_code == 404 and "no-such-source" in started.text


def test_a_task_acknowledged_before_a_stop_runs_at_the_next_start(
    tmp_path: Any, analyzer: FaceAnalyzer
) -> None:
    settings, keys = make_gallery(tmp_path / "home", analyzer)
    with FaceTrace.open(settings, analyzer=analyzer) as ft:
        admin = access.authenticate(ft, keys["admin"], "x")
        queued = tasks.submit(ft, admin, {"source": "s1"}, kind=TaskKind.TAKEDOWN_SOURCE)
    assert queued.status == "queued"  # acknowledged, then the server stopped
    api = Api(create_app(settings, analyzer=analyzer))
    try:
        task = wait(Served(settings, api, keys), queued.id)
        assert task["status"] == "completed"
    finally:
        api.close()


@pytest.fixture
def photo_server() -> Iterator[str]:
    handler = partial(SimpleHTTPRequestHandler, directory=str(FR))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url_ingest_runs_as_a_task_off_the_event_loop(fresh: Served, photo_server: str) -> None:
    urls = [f"{photo_server}/biden.jpg", f"{photo_server}/missing.jpg"]
    started = fresh.api.request(
        "POST", "/v1/sources/s1/urls", key=fresh.keys["admin"], json={"urls": urls}
    )
    assert started.status_code == 202, started.text
    task = wait(fresh, started.json()["task_id"])
    assert task["status"] == "completed", task
    summary = task["result"]
    assert summary["photos_added"] == 1 and len(summary["errors"]) == 1
    job = fresh.api.request("GET", f"/v1/jobs/{summary['job_id']}", key=fresh.keys["admin"])
    assert job.json()["status"] == "completed"
