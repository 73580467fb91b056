"""Start, and stop, a throwaway PostgreSQL server on 127.0.0.1 for tests and benchmarks.

It uses Debian's ``postgresql`` package (``initdb`` and ``pg_ctl``, found on PATH or
under /usr/lib/postgresql/*/bin). PostgreSQL refuses to run as root, so when started
by root the server runs as the ``postgres`` system user the package creates. The data
folder is temporary and deleted by ``stop``; authentication is ``trust`` on loopback
only, for a superuser named ``facetrace``.

Usage::

    python scripts/pg_server.py run -- pytest    # start, run with FACETRACE_TEST_DATABASE_URL
                                                 # (an empty database) set, then stop
    python scripts/pg_server.py start            # prints the URL
    python scripts/pg_server.py stop

The server's data folder, port and URL are kept in ``--state`` (default
``.pgtest/server.json``, git-ignored) so ``stop`` finds it from another process.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_STATE = Path(".pgtest/server.json")
USER = "facetrace"
DATABASE = "facetrace"


def _bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise SystemExit(f"{name} not found: install Debian's postgresql package")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_owner(owner: pwd.struct_passwd | None) -> dict[str, Any]:
    """subprocess arguments that run a command as ``owner`` (None: as we are)."""
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


def start(state: Path) -> dict[str, Any]:
    if state.exists():
        raise SystemExit(f"a server may be running already ({state}); stop it first")
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="facetrace-pg-"))
    data, log = base / "data", base / "server.log"
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    run = _as_owner(owner)
    subprocess.run(
        [_bin("initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=base,
        **run,
    )
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections=200"
    subprocess.run(
        [_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=base,
        **run,
    )
    subprocess.run(
        [_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE],
        check=True,
        cwd=base,
        **run,
    )
    record = {
        "base": str(base),
        "port": port,
        "owner": owner.pw_name if owner else None,
        "url": f"postgresql+psycopg://{USER}@127.0.0.1:{port}/{DATABASE}",
    }
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps(record))
    return record


def stop(state: Path) -> None:
    if not state.exists():
        return
    record = json.loads(state.read_text())
    owner = pwd.getpwnam(record["owner"]) if record["owner"] else None
    with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
        subprocess.run(
            [_bin("pg_ctl"), "-D", f"{record['base']}/data", "-m", "immediate", "-w", "stop"],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=record["base"],
            **_as_owner(owner),
        )
    shutil.rmtree(record["base"], ignore_errors=True)
    state.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE)
    parser.add_argument("action", choices=["start", "stop", "run"])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.action == "start":
        print(start(args.state)["url"])
        return 0
    if args.action == "stop":
        stop(args.state)
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("run needs a command after --")
    record = start(args.state)
    try:
        env = {**os.environ, "FACETRACE_TEST_DATABASE_URL": record["url"]}
        return subprocess.call(command, env=env)
    finally:
        stop(args.state)


if __name__ == "__main__":
    sys.exit(main())
