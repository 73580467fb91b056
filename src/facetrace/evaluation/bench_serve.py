"""``bench serve``: the REST API under concurrent clients, against in-process search.

Builds the same gallery as ``bench search`` (``n`` synthetic faces plus real photos,
:func:`~facetrace.evaluation.bench_search.synthetic_gallery`), makes an admin and key,
times sequential in-process searches of the probe (``ops.gallery.search``, the call the
API makes) as the baseline, then starts the real server (``facetrace serve``) as a
subprocess on a free port of 127.0.0.1 and has ``clients`` threads, each with its own
HTTP connection, post the probe to ``/v1/search`` ``searches`` times each after one
warm-up search. Rate limits are raised for the run; every other setting is the caller's.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from facetrace.config import Settings
from facetrace.errors import FaceTraceError, UsageError
from facetrace.evaluation.bench_search import synthetic_gallery

HOST = "127.0.0.1"
CASE_ID = "bench"
REASON = "serving benchmark"
START_TIMEOUT_S = 300.0
REQUEST_TIMEOUT_S = 120.0
# Requests a minute: far beyond what the run sends, so no request meets a 429.
UNLIMITED_RATE = 1e9


@dataclass
class ClientLog:
    """One client's timed requests: latencies in seconds, and what went wrong."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    top_match_real: int = 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _server_env(settings: Settings) -> dict[str, str]:
    """This process's environment with every setting of ``settings`` (but ``home``,
    given as ``--home``, and the database, the gallery's own) and unlimited search
    rates, as ``FACETRACE_*`` variables."""
    env = dict(os.environ)
    values = settings.model_dump(mode="json", exclude={"home", "database_url"})
    values["api_search_rate"] = values["api_address_rate"] = UNLIMITED_RATE
    for name in ("home", "database_url", *values):
        env.pop(f"FACETRACE_{name.upper()}", None)
    for name, value in values.items():
        if value is not None:
            env[f"FACETRACE_{name.upper()}"] = (
                value if isinstance(value, str) else json.dumps(value)
            )
    return env


def _log_tail(log: IO[bytes], chars: int = 2000) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode("utf-8", "replace")[-chars:]


@contextmanager
def running_server(home: Path, settings: Settings) -> Iterator[str]:
    """Run ``facetrace --home HOME serve`` on a free local port until the block ends;
    yields its base URL once ``/health`` answers. Its log goes to ``HOME/serve.log``."""
    port = _free_port()
    cmd = [sys.executable, "-m", "facetrace.cli.main", "--home", str(home), "serve"]
    cmd += ["--host", HOST, "--port", str(port)]
    url = f"http://{HOST}:{port}"
    with open(home / "serve.log", "w+b") as log:
        proc = subprocess.Popen(
            cmd, env=_server_env(settings), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if proc.poll() is not None:
                    raise FaceTraceError(
                        f"the server exited with status {proc.returncode}: {_log_tail(log)}"
                    )
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise FaceTraceError(f"the server did not answer in {START_TIMEOUT_S:.0f} s")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _top_is_real(result: Mapping[str, Any], n_synthetic: int) -> bool:
    """Whether the first face's best match is a real photo (synthetic ids are 1..n)."""
    faces = result.get("faces") or []
    matches = (faces[0].get("matches") or []) if faces else []
    return bool(matches) and int(matches[0]["photo_id"]) > n_synthetic


def _client(
    url: str,
    token: str,
    probe: bytes,
    searches: int,
    n_synthetic: int,
    start: threading.Barrier,
    log: ClientLog,
) -> None:
    """One client: a warm-up search, wait for the others, then ``searches`` timed ones."""

    def post(client: httpx.Client) -> httpx.Response:
        return client.post(
            "/v1/search",
            files={"photo": ("probe.jpg", probe, "image/jpeg")},
            data={"case_id": CASE_ID, "reason": REASON},
        )

    headers = {"X-API-Key": token}
    with httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
        try:
            post(client)  # warm-up: not timed; failures show in the timed searches
        except httpx.HTTPError:
            pass
        finally:
            start.wait()
        for _ in range(searches):
            t = time.perf_counter()
            try:
                response = post(client)
            except httpx.HTTPError as exc:
                log.latencies.append(time.perf_counter() - t)
                log.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            log.latencies.append(time.perf_counter() - t)
            if response.status_code != 200:
                log.errors.append(f"{response.status_code}: {response.text[:200]}")
            elif _top_is_real(response.json(), n_synthetic):
                log.top_match_real += 1


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of sorted values."""
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def bench_serve(
    settings: Settings,
    probe: Path,
    gallery_photos: Sequence[Path],
    n: int = 10_000,
    clients: int = 8,
    searches: int = 25,
    seed: int = 0,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Serve an ``n``-face gallery (plus ``gallery_photos``) and search it with ``clients``
    concurrent clients, ``searches`` each; compare with as many in-process searches.

    Returns the figures as a JSON-ready dict: latencies in milliseconds (p50, p99, max
    over every timed request), ``searches_per_s`` (timed requests over the wall time
    from the clients' common start to the last answer), ``errors`` (non-200 answers and
    failed requests), ``top_match_real`` (answers whose best match is a real photo) and
    the ratios to sequential in-process search.
    """
    from facetrace import operations as ops
    from facetrace.governance import access
    from facetrace.governance.access import Actor, Role

    if n < 1 or clients < 1 or searches < 1:
        raise UsageError("--n, --clients and --searches must each be at least 1")
    data = probe.read_bytes()
    total = clients * searches
    with tempfile.TemporaryDirectory(prefix="bench-serve-", dir=workdir) as tmp:
        home = Path(tmp)
        s = settings.model_copy(update={"home": home, "database_url": None})
        with synthetic_gallery(s, n, gallery_photos, seed) as built:
            engine = built.engine
            bootstrap = Actor(name="local:bench", role=Role.ADMIN, user_id=None)
            token = access.add_user(engine, bootstrap, "bench", "admin").token
            actor = access.authenticate(engine, token, "")
            gallery_faces = engine.stats().faces
            ops.gallery.search(engine, actor, data, case_id=CASE_ID, reason="warm-up")
            local: list[float] = []
            local_real = 0
            t0 = time.perf_counter()
            for _ in range(total):
                t = time.perf_counter()
                result = ops.gallery.search(engine, actor, data, case_id=CASE_ID, reason=REASON)
                local.append(time.perf_counter() - t)
                local_real += _top_is_real(result.to_dict(), n)
            local_wall = time.perf_counter() - t0

        logs = [ClientLog() for _ in range(clients)]
        start = threading.Barrier(clients + 1)
        with running_server(home, s) as url:
            threads = [
                threading.Thread(
                    target=_client, args=(url, token, data, searches, n, start, log), daemon=True
                )
                for log in logs
            ]
            for thread in threads:
                thread.start()
            start.wait()
            t0 = time.perf_counter()
            for thread in threads:
                thread.join()
            served_wall = time.perf_counter() - t0

    latencies = sorted(x for log in logs for x in log.latencies)
    errors = [e for log in logs for e in log.errors]
    if not latencies:
        raise FaceTraceError("no client completed a search")
    local.sort()
    p50 = statistics.median(latencies)
    local_p50 = statistics.median(local)
    served_rate = len(latencies) / served_wall
    local_rate = total / local_wall
    return {
        "n_faces": gallery_faces,
        "n_synthetic": n,
        "backend": str(s.index_backend),
        "clients": clients,
        "searches": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "top_match_real": sum(log.top_match_real for log in logs),
        "p50_ms": round(p50 * 1000, 1),
        "p99_ms": round(_percentile(latencies, 99) * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
        "searches_per_s": round(served_rate, 2),
        "inprocess_searches": total,
        "inprocess_top_match_real": local_real,
        "inprocess_p50_ms": round(local_p50 * 1000, 1),
        "inprocess_p99_ms": round(_percentile(local, 99) * 1000, 1),
        "inprocess_searches_per_s": round(local_rate, 2),
        "ratio_throughput_vs_inprocess": round(served_rate / local_rate, 3),
        "ratio_p50_vs_inprocess": round(p50 / local_p50, 3),
    }
