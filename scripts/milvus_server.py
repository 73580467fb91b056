"""Start, wait for and stop a throwaway Milvus standalone server for tests and benchmarks.

It uses the PyPI ``milvus`` package (``pip install milvus==2.3.5``), which bundles the
Milvus 2.3 standalone binary with embedded etcd and local storage, so no Docker is needed.
Every service advertises 127.0.0.1, etcd listens on localhost, and all data (etcd,
segments, logs) lives in a temporary folder that ``stop`` deletes.

Usage::

    python scripts/milvus_server.py start          # prints the URI, e.g. http://127.0.0.1:19530
    python scripts/milvus_server.py wait           # exits 0 once the server answers
    python scripts/milvus_server.py stop           # stops it and removes its data folder
    python scripts/milvus_server.py run -- pytest -m milvus   # start, run with
                                                   # FACETRACE_TEST_MILVUS_URI set, stop

The server's pid, URI and data folder are kept in ``--state`` (default
``.milvus/server.json``, git-ignored) so ``stop`` finds it from another process. Options
go before the command (``milvus_server.py --state S run -- ...``). Run one server per
machine at a time: the embedded etcd's peer port (2380) is not configurable.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_STATE = Path(".milvus/server.json")
_SERVICES = (
    "rootCoord",
    "proxy",
    "queryCoord",
    "queryNode",
    "indexCoord",
    "indexNode",
    "dataCoord",
    "dataNode",
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(state: Path, data_dir: Path | None, timeout: float) -> dict[str, Any]:
    """Launch the server detached from this process; return its state record."""
    try:
        import milvus
    except ImportError as exc:  # pragma: no cover - message for the operator
        raise SystemExit("the 'milvus' package is missing: pip install milvus==2.3.5") from exc
    if state.exists():
        old = json.loads(state.read_text())
        if _alive(old["pid"]):
            raise SystemExit(f"a server is already running (pid {old['pid']}, {old['uri']})")
        state.unlink()

    base = data_dir or Path(tempfile.mkdtemp(prefix="facetrace-milvus-"))
    config = milvus.MilvusServerConfig(data_dir=str(base), proxy_port=_free_port())
    for service in _SERVICES:
        config.set(f"{service}.ip", "127.0.0.1")
    config.set("minio.address", "127.0.0.1")
    config.resolve()  # picks free ports, lays out data/, logs/, configs/milvus.yaml
    milvus._initialize_data_files(config.base_data_dir)
    exe = os.path.join(config.base_data_dir, "bin", "milvus")
    metrics_port = _free_port()
    env = os.environ.copy()
    env.update(
        {
            "DEPLOY_MODE": "STANDALONE",
            "METRICS_PORT": str(metrics_port),
            "MILVUS_RUN_DIR": os.path.join(config.base_data_dir, "run"),
            "LD_LIBRARY_PATH": os.path.dirname(exe) + ":" + os.environ.get("LD_LIBRARY_PATH", ""),
        }
    )
    logs = Path(config.base_data_dir) / "logs"
    with (
        open(logs / "milvus-stdout.log", "wb") as out,
        open(logs / "milvus-stderr.log", "wb") as err,
    ):
        proc = subprocess.Popen(
            [exe, "run", "standalone"],
            cwd=config.base_data_dir,
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() ends it and its children
        )
    record = {
        "pid": proc.pid,
        "uri": f"http://127.0.0.1:{config.get('proxy_port')}",
        "health": f"http://127.0.0.1:{metrics_port}/healthz",
        "data_dir": str(base),
    }
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps(record))
    try:
        wait(record, timeout)
    except BaseException:
        stop(state)
        raise
    return record


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait(record: dict[str, Any], timeout: float) -> None:
    """Block until the health endpoint says OK and the gRPC port accepts connections."""
    deadline = time.monotonic() + timeout
    port = int(record["uri"].rsplit(":", 1)[1])
    while time.monotonic() < deadline:
        if not _alive(record["pid"]):
            raise SystemExit(f"milvus exited during start-up; see {record['data_dir']}/logs")
        try:
            with urllib.request.urlopen(record["health"], timeout=2) as resp:
                healthy = b"OK" in resp.read()
            if healthy:
                with socket.create_connection(("127.0.0.1", port), timeout=2):
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"milvus was not ready after {timeout:.0f} s")


def stop(state: Path) -> None:
    """Terminate the server's process group and delete its data folder."""
    if not state.exists():
        return
    record = json.loads(state.read_text())
    pid = int(record["pid"])
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    _reap(pid)
    shutil.rmtree(record["data_dir"], ignore_errors=True)
    state.unlink(missing_ok=True)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "wait", "stop", "run"])
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="for run: the command to run")
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()

    if args.command == "start":
        print(start(args.state, args.data_dir, args.timeout)["uri"])
    elif args.command == "wait":
        wait(json.loads(args.state.read_text()), args.timeout)
    elif args.command == "stop":
        stop(args.state)
    else:
        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not argv:
            parser.error("run needs a command after --")
        record = start(args.state, args.data_dir, args.timeout)
        try:
            env = dict(os.environ, FACETRACE_TEST_MILVUS_URI=record["uri"])
            return subprocess.call(argv, env=env)
        finally:
            stop(args.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
