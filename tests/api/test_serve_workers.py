"""Several API processes over one PostgreSQL database and one Milvus collection give the
same answers, and a change through one is seen through the others; each task runs once
whichever process accepted it.

Real processes: ``facetrace serve --workers 2`` and a second ``facetrace serve`` with an
empty home folder of its own (another node), both on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from facetrace import FaceTrace, Settings
from facetrace.api.app import check_shared
from facetrace.config import IndexBackend
from facetrace.errors import UsageError
from facetrace.governance import access
from facetrace.operations import tasks
from facetrace.operations.tasks import TaskKind
from tests.conftest import FR
from tests.governance.conftest import ADMIN, Clock
from tests.ingest.conftest import LocalServer

MILVUS = os.environ.get("FACETRACE_TEST_MILVUS_URI")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class Server:
    """``facetrace serve`` in a process of its own, stopped at the end."""

    def __init__(self, home: Path, env: dict[str, str], workers: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.parent / f"serve-{self.port}.log"
        command = [sys.executable, "-m", "facetrace.cli.main", "--home", str(home), "serve"]
        command += ["--port", str(self.port), "--workers", str(workers)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 90
        while True:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)

    def stop(self) -> None:
        os.killpg(self.process.pid, 15)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(30)


@pytest.fixture
def shared(tmp_path: Path, database_url: str | None) -> Iterator[tuple[Settings, dict[str, str]]]:
    if database_url is None:
        pytest.skip("several processes need PostgreSQL (the SQLite case is tested below)")
    if not MILVUS:
        if os.environ.get("FACETRACE_REQUIRE_POSTGRES"):
            pytest.fail("FACETRACE_TEST_MILVUS_URI is not set (scripts/milvus_server.py run)")
        pytest.skip("needs a Milvus server: run through scripts/milvus_server.py")
    collection = f"t_{uuid.uuid4().hex[:12]}"
    env = dict(
        os.environ,
        FACETRACE_DATABASE_URL=database_url,
        FACETRACE_INDEX_BACKEND="milvus",
        FACETRACE_MILVUS_URI=MILVUS,
        FACETRACE_MILVUS_COLLECTION=collection,
        FACETRACE_TASK_POLL_SECONDS="0.5",
        FACETRACE_WORKERS="1",
    )
    settings = Settings(
        home=tmp_path / "node-a",
        workers=1,
        database_url=database_url,
        index_backend=IndexBackend.MILVUS,
        milvus_uri=MILVUS,
        milvus_collection=collection,
    )
    yield settings, env
    from pymilvus import MilvusClient

    MilvusClient(uri=MILVUS).drop_collection(collection)


def test_processes_agree_and_see_each_others_changes(
    shared: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    settings, env = shared
    with FaceTrace.open(settings) as ft:
        ft.add_source("council", lawful_basis="t")
        ft.add_source("archive", lawful_basis="t")
        ft.ingest([FR / "obama.jpg"], source="council", workers=1)
        ft.ingest([FR / "biden.jpg"], source="archive", workers=1)
        key = access.add_user(ft, ADMIN, "admin1", "admin").token
    node_b = tmp_path / "node-b"  # another machine: nothing of node A's disk
    node_b.mkdir()
    a = Server(settings.home, env, workers=2)
    try:
        b = Server(node_b, env, workers=1)
        try:
            assert len(_children(a.process.pid)) >= 2  # uvicorn's supervisor and 2 workers

            def search(server: Server, reason: str) -> dict[str, Any]:
                with (FR / "obama2.jpg").open("rb") as photo:
                    out = httpx.post(
                        f"{server.url}/v1/search",
                        headers={"X-API-Key": key},
                        files={"photo": photo},
                        data={"case_id": "CASE-W", "reason": reason},
                        timeout=120,
                    )
                assert out.status_code == 200, out.text
                return out.json()  # type: ignore[no-any-return]

            def ranked(result: dict[str, Any]) -> list[tuple[str, float | None]]:
                return [(m["source"], m["false_match_rate"]) for m in result["faces"][0]["matches"]]

            answers = [ranked(search(a, f"via A {n}")) for n in range(6)]
            answers += [ranked(search(b, f"via B {n}")) for n in range(2)]
            assert all(answer == answers[0] for answer in answers), answers
            assert answers[0][0][0] == "council"
            # Node B holds no file of node A's: the thumbnail comes from the database.
            face_id = search(a, "thumbnail")["faces"][0]["matches"][0]["face_id"]
            thumb = httpx.get(f"{b.url}/v1/faces/{face_id}/thumbnail", headers={"X-API-Key": key})
            assert thumb.status_code == 200 and thumb.content.startswith(b"\xff\xd8")
            assert not any(node_b.rglob("*.jpg"))

            # A takedown accepted by one process is run once and seen by the others.
            started = httpx.post(
                f"{a.url}/v1/takedowns", headers={"X-API-Key": key}, json={"source": "council"}
            )
            assert started.status_code == 202, started.text
            task_id = started.json()["task_id"]
            deadline = time.monotonic() + 120
            while True:
                task = httpx.get(f"{b.url}/v1/tasks/{task_id}", headers={"X-API-Key": key}).json()
                if task["status"] in ("completed", "failed"):
                    break
                assert time.monotonic() < deadline, task
                time.sleep(0.5)
            assert task["status"] == "completed", task
            for server in (b, a, a, a):
                sources = [source for source, _ in ranked(search(server, "after the takedown"))]
                assert "council" not in sources
        finally:
            b.stop()
    finally:
        a.stop()


def test_several_processes_are_refused_without_a_shared_database_and_index(
    tmp_path: Path,
) -> None:
    with pytest.raises(UsageError, match="shared database and index"):
        check_shared(Settings(home=tmp_path))
    env = dict(os.environ, FACETRACE_HOME=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-m", "facetrace.cli.main", "serve", "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "shared database and index" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_a_task_is_claimed_once_and_again_only_after_its_lease(settings: Settings) -> None:
    clock = Clock()
    with FaceTrace.open(settings, clock=clock) as ft:
        ft.add_source("s1", lawful_basis="t")
        queued = tasks.submit(ft, ADMIN, {"source": "s1"}, kind=TaskKind.TAKEDOWN_SOURCE)
        assert tasks.claim(ft, queued.id, lease_seconds=60)  # one process takes it...
        assert not tasks.claim(ft, queued.id, lease_seconds=60)  # ...and no other
        clock.advance(seconds=45)
        tasks.renew(ft, queued.id)  # its runner is alive
        clock.advance(seconds=45)
        assert not tasks.claim(ft, queued.id, lease_seconds=60)
        # Claimed elsewhere: run() leaves it alone.
        assert tasks.run(ft, queued.id, lease_seconds=60).status == "running"
        clock.advance(seconds=30)  # 75 s without a renewal: its runner died
        assert tasks.run(ft, queued.id, lease_seconds=60).status == "completed"
        assert not tasks.claim(ft, queued.id, lease_seconds=0)  # finished: never again


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_a_url_task_left_by_a_dead_node_resumes_on_another_without_its_disk(
    tmp_path: Path, database_url: str | None, server: LocalServer
) -> None:
    shared_db = database_url or f"sqlite:///{tmp_path / 'shared.db'}"
    node_a, node_b = (
        Settings(home=tmp_path / n, workers=1, database_url=shared_db, allow_loopback=True)
        for n in ("a", "b")
    )
    names = ["obama.jpg", "biden.jpg", "two_people.jpg"]
    urls = [server.image(f"/{name}", (FR / name).read_bytes()) for name in names]
    clock = Clock()

    def photos_fetched() -> list[str]:
        return [path for path in server.paths() if path.endswith(".jpg")]  # not robots.txt

    class Died(Exception):
        pass

    def die_after_one(outcome: object) -> None:
        raise Died

    with FaceTrace.open(node_a, clock=clock) as a:
        a.add_source("web", lawful_basis="t")
        task = tasks.submit(a, ADMIN, {"source": "web", "urls": urls}, kind=TaskKind.INGEST_URLS)
        assert tasks.claim(a, task.id, lease_seconds=60)
        # What node A's runner did before it died: the task's URL list in its home, and
        # a job over it that stored the first photo.
        listed = node_a.home / "tasks" / f"task-{task.id}.txt"
        listed.parent.mkdir(parents=True)
        listed.write_text("\n".join(urls) + "\n")
        with pytest.raises(Died):
            a.ingest([listed], source="web", on_item=die_after_one)
    shutil.rmtree(node_a.home)  # node A and its disk are gone
    assert photos_fetched() == ["/obama.jpg"]

    clock.advance(seconds=90)  # no renewal for longer than the lease: node A died
    with FaceTrace.open(node_b, clock=clock) as b:
        done = tasks.run(b, task.id, lease_seconds=60)
        assert done.status == "completed", done
        jobs = b.store.jobs()
        assert len(jobs) == 1 and jobs[0].status == "completed"  # the same job, finished
        assert jobs[0].item_counts == {"added": 3}
        assert sorted(photos_fetched()) == sorted(f"/{name}" for name in names)  # each once
        assert b.stats().photos == 3
