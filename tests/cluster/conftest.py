"""A real Ray cluster on loopback for the cluster tests: a head node with no CPUs (so
every analysis runs on a worker node) and worker nodes of one CPU each, every node its
own ``ray start`` process group, started from this virtual environment's ``ray``.

Nodes are stopped by signalling their process groups, never with ``ray stop`` (which
stops every Ray process on the machine, another test run's included).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetrace import Settings
from facetrace.config import IndexBackend
from tests.conftest import PG_URL, new_pg_database

RAY = Path(sys.executable).parent / "ray"

MILVUS_URI = os.environ.get("FACETRACE_TEST_MILVUS_URI")
REQUIRED = bool(os.environ.get("FACETRACE_REQUIRE_POSTGRES"))
"""Set by scripts/test.sh: what is missing fails the run instead of skipping it."""
OBJECT_STORE_BYTES = 100 * 1024 * 1024
DLIB_DIM = 128


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RayCluster:
    """``ray start`` nodes on 127.0.0.1; each node's processes share one process group."""

    def __init__(self, temp_dir: Path) -> None:
        self.temp_dir = temp_dir
        self.port = _free_port()
        self.client_port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        """The head's GCS address, for a driver on this machine."""
        self.client_address = f"ray://127.0.0.1:{self.client_port}"
        """The Ray Client address, as a driver anywhere would use."""
        self.head: int | None = None
        self.workers: list[int] = []
        """Worker nodes' process group ids, in start order."""
        self.env = {
            **os.environ,
            "RAY_USAGE_STATS_ENABLED": "0",
            # A killed node is known dead after ~1.5 s rather than ~15 s.
            "RAY_health_check_period_ms": "500",
            "RAY_health_check_failure_threshold": "3",
        }

    def _start(self, args: list[str]) -> int:
        log = self.temp_dir / f"start-{uuid.uuid4().hex[:8]}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(RAY), "start", *args, "--node-ip-address=127.0.0.1"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # its pid is the node's process group
            )
            try:
                code = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                code = -1
        if code != 0:
            self._kill(proc.pid)
            raise RuntimeError(f"ray start failed ({code}): {log.read_text()[-2000:]}")
        return proc.pid

    def start_head(self) -> None:
        self.head = self._start(
            [
                "--head",
                f"--port={self.port}",
                f"--ray-client-server-port={self.client_port}",
                f"--dashboard-port={_free_port()}",
                f"--temp-dir={self.temp_dir}",
                "--num-cpus=0",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--object-store-memory={OBJECT_STORE_BYTES}",
            ]
        )

    def add_worker(self) -> int:
        """Start a worker node with one CPU (one at a time: nodes on one machine pick
        their socket names in turn); returns its process group id."""
        group = self._start(
            [
                f"--address={self.address}",
                "--num-cpus=1",
                f"--dashboard-agent-listen-port={_free_port()}",
                f"--object-store-memory={OBJECT_STORE_BYTES}",
                "--disable-usage-stats",
            ]
        )
        self.workers.append(group)
        self.wait_for_cpus(len(self.workers))
        return group

    def wait_for_cpus(self, cpus: int, timeout: float = 60) -> None:
        """Until the cluster counts ``cpus`` CPUs (a node joined or is known dead)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = subprocess.run(
                [str(RAY), "status", f"--address={self.address}"],
                capture_output=True,
                text=True,
                env=self.env,
                check=False,
            ).stdout
            if f"/{cpus}.0 CPU" in status:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the cluster did not reach {cpus} CPUs")

    def node_id(self, group: int) -> str:
        """The Ray node id of the worker node whose process group is ``group`` (its
        raylet's ``--node_id``)."""
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if os.getpgid(int(proc.name)) != group:
                    continue
                args = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:  # gone meanwhile
                continue
            if args[0].endswith(b"/raylet"):
                for arg in args:
                    if arg.startswith(b"--node_id="):
                        return arg.removeprefix(b"--node_id=").decode()
        raise RuntimeError(f"no raylet in process group {group}")

    def worker_apart_from(self, node_id: str) -> int:
        """A worker node other than the one with ``node_id``: its process group id.

        Every node here has the machine's address, and a driver attaches to a node at its
        own address: Ray picks one of the worker nodes. Killing that one kills the
        driver's own raylet, which a real layout never does to a running job (a driver
        runs on the head's machine, on a machine of its own with Ray Client, or dies with
        its node: the driver-killed test)."""
        return next(g for g in reversed(self.workers) if self.node_id(g) != node_id)

    def kill_worker(self, group: int) -> None:
        """SIGKILL a worker node: its raylet, its agents and its worker processes at once."""
        self._kill(group)
        self.workers.remove(group)

    @staticmethod
    def _kill(group: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)

    def stop(self) -> None:
        """Stop every node: SIGTERM, then SIGKILL what is left after a few seconds."""
        groups = [*self.workers, *([self.head] if self.head is not None else [])]
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for group in groups:
            while time.monotonic() < deadline and _group_alive(group):
                time.sleep(0.2)
            self._kill(group)
        self.workers.clear()
        self.head = None


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    """A head and two one-CPU worker nodes, for the module."""
    try:
        import ray  # noqa: F401
    except ImportError:
        if REQUIRED:
            pytest.fail('ray is not installed (pip install -e ".[ray]")')
        pytest.skip('needs Ray: pip install -e ".[ray]"')
    # Short: Ray's socket paths live under it and must stay under 108 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="ftray-", dir="/tmp"))
    cluster = RayCluster(temp_dir)
    try:
        cluster.start_head()
        cluster.add_worker()
        cluster.add_worker()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def database_url_pg() -> Iterator[str | None]:
    """A new PostgreSQL database (dropped afterwards) when a server is given, else None
    (the gallery's SQLite file); a run that requires PostgreSQL fails without one."""
    if not PG_URL:
        if REQUIRED:
            pytest.fail("FACETRACE_TEST_DATABASE_URL is not set (scripts/pg_server.py run)")
        yield None
        return
    with new_pg_database(PG_URL) as url:
        yield url


@pytest.fixture(params=["faiss", "milvus"])
def cluster_settings(
    request: pytest.FixtureRequest, tmp_path: Path, database_url_pg: str | None
) -> Iterator[Settings]:
    """Settings for a fresh gallery: metadata in PostgreSQL, vectors in FAISS, and again
    with the vectors in the Milvus server when there is one. Near-duplicate detection is
    off, so that what is stored does not depend on the order analyses finish in."""
    if request.param == "faiss":
        yield Settings(
            home=tmp_path / "home", workers=1, database_url=database_url_pg, near_duplicate_bits=-1
        )
        return
    if not MILVUS_URI:
        pytest.skip("FACETRACE_TEST_MILVUS_URI is not set (scripts/milvus_server.py run)")
    settings = Settings(
        home=tmp_path / "home",
        workers=1,
        database_url=database_url_pg,
        near_duplicate_bits=-1,
        index_backend=IndexBackend.MILVUS,
        milvus_uri=MILVUS_URI,
        milvus_collection=f"cluster_{uuid.uuid4().hex[:12]}",
    )
    yield settings
    from facetrace.index.milvus_backend import MilvusIndex

    index = MilvusIndex(DLIB_DIM, MILVUS_URI, settings.milvus_collection)
    index.drop()
    index.close()
