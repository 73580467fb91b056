"""A real local web server for the fetcher tests (threaded http.server on 127.0.0.1).

Each test gets a fresh server on an ephemeral port. Routes are plain data or
small handler functions; every request is logged with its arrival time, Host
header and how many body bytes the server managed to send.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from facetrace import Settings
from facetrace.ingest.fetch import SourcePolicy

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
JPEG = (FIXTURES / "face_recognition" / "obama-240p.jpg").read_bytes()


@dataclass
class Hit:
    """One request the server received."""

    path: str
    at: float  # time.monotonic() on arrival
    host: str | None
    user_agent: str | None
    sent: int = 0  # body bytes written before the handler finished or the client left
    done: threading.Event = field(default_factory=threading.Event)


Handler = Callable[["_RequestHandler", Hit], None]


@dataclass(frozen=True)
class Route:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds before the status line


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalServer._Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        path = self.path
        hit = Hit(path, time.monotonic(), self.headers.get("Host"), self.headers.get("User-Agent"))
        with owner.lock:
            owner.hits.append(hit)
            owner.in_flight += 1
            owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
        try:
            route = owner.routes.get(path)
            if route is None:
                self.send_simple(404, b"not found", "text/plain")
            elif callable(route):
                route(self, hit)
            else:
                if route.delay:
                    time.sleep(route.delay)
                self.send_response(route.status)
                names = {k.lower() for k, _ in route.headers}
                for key, value in route.headers:
                    self.send_header(key, value)
                if "content-length" not in names:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)
                hit.sent = len(route.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with owner.lock:
                owner.in_flight -= 1
            hit.done.set()

    def send_simple(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LocalServer:
    """The test web server; ``url(path)`` gives an absolute URL on it."""

    class _Server(ThreadingHTTPServer):
        daemon_threads = True
        block_on_close = False
        owner: LocalServer

        def handle_error(self, request: object, client_address: object) -> None:
            # Clients that hang up mid-response (byte caps, timeouts) are the point
            # of several tests; anything else is still reported.
            import sys

            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)  # type: ignore[arg-type]

    def __init__(self) -> None:
        self.routes: dict[str, Route | Handler] = {}
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self._httpd = self._Server(("127.0.0.1", 0), _RequestHandler)
        self._httpd.owner = self
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def add(
        self,
        path: str,
        body: bytes = b"",
        *,
        status: int = 200,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> str:
        """Serve a fixed response at ``path``; returns its absolute URL."""
        items = list((headers or {}).items())
        if content_type is not None:
            items.append(("Content-Type", content_type))
        self.routes[path] = Route(status, body, tuple(items), delay)
        return self.url(path)

    def image(self, path: str, body: bytes = JPEG) -> str:
        return self.add(path, body, content_type="image/jpeg")

    def html(self, path: str, text: str) -> str:
        return self.add(path, text.encode(), content_type="text/html; charset=utf-8")

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.add(path, status=status, headers={"Location": location})

    def handle(self, path: str, handler: Handler) -> str:
        self.routes[path] = handler
        return self.url(path)

    def hits_for(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]

    def paths(self) -> list[str]:
        with self.lock:
            return [h.path for h in self.hits]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    srv = LocalServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def net_settings(tmp_path: Path) -> Settings:
    """Settings that let the fetcher reach the local server (loopback only)."""
    return Settings(home=tmp_path / "home", allow_loopback=True)


@pytest.fixture
def net_gallery(net_settings: Settings, database_url: str | None) -> Settings:
    """:func:`net_settings` for a gallery: its jobs' metadata in SQLite and, as a second
    run, in PostgreSQL."""
    return net_settings.model_copy(update={"database_url": database_url})


@pytest.fixture
def strict_settings(tmp_path: Path) -> Settings:
    """Production network settings: loopback refused."""
    return Settings(home=tmp_path / "home", allow_loopback=False)


def _fast_policy(**overrides: Any) -> SourcePolicy:
    values: dict[str, Any] = {"rate_limit": 1000.0, "timeout": 2.0}
    values.update(overrides)
    return SourcePolicy(**values)


@pytest.fixture
def make_policy() -> Callable[..., SourcePolicy]:
    """Build a policy quick enough for tests (high rate limit, 2 s timeout) plus overrides."""
    return _fast_policy


@pytest.fixture
def jpeg() -> bytes:
    """A real JPEG photo (tests/fixtures/face_recognition/obama-240p.jpg)."""
    return JPEG
