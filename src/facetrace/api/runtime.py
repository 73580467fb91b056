"""What one API process holds: the engine, the lock that serialises it, the limits."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import Request, Response
from sqlalchemy import Engine

from facetrace.api.errors import Unauthenticated
from facetrace.api.security import RateLimiter, SharedRateLimiter, bearer_token, rate_limiter
from facetrace.app import FaceTrace, ProbePhoto
from facetrace.config import Settings
from facetrace.errors import AccessDeniedError
from facetrace.governance import access, optout, sessions
from facetrace.governance.access import PUBLIC, Actor
from facetrace.operations import tasks
from facetrace.operations.tasks import TaskKind, TaskRecord

log = logging.getLogger("facetrace.api")

T = TypeVar("T")

Limiter = RateLimiter | SharedRateLimiter
"""A limiter of this process, or one every API process shares."""

SESSION_COOKIE = "facetrace_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Limits:
    """The rate limiters, one per kind of request: this process's, or on PostgreSQL
    shared by every API process (see :func:`~facetrace.api.security.rate_limiter`)."""

    search_per_key: Limiter
    search_per_address: Limiter
    optout_per_address: Limiter
    signin_per_address: Limiter
    signin_per_name: Limiter

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> Limits:
        """Limits at ``settings``' rates, over the metadata database ``engine``."""
        return cls(
            search_per_key=rate_limiter(engine, "search-key", settings.api_search_rate),
            search_per_address=rate_limiter(engine, "search-address", settings.api_address_rate),
            optout_per_address=rate_limiter(engine, "optout-address", settings.api_optout_rate),
            signin_per_address=rate_limiter(engine, "signin-address", settings.api_signin_rate),
            signin_per_name=rate_limiter(engine, "signin-name", settings.api_signin_rate),
        )


class TaskRunner:
    """One thread that runs tasks one at a time, each holding the engine's lock.

    Tasks this process accepts are queued here at once; every ``task_poll_seconds`` the
    runner also looks in the task table for tasks that other processes accepted and
    did not run, or left running when they died (their claim older than
    ``task_lease_seconds``). A task runs only once claimed (:func:`tasks.claim`), so
    several processes over one database run each task once; a thread renews the claim
    while the task runs.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.queue: queue.Queue[int | None] = queue.Queue()
        self.thread = threading.Thread(target=self._work, name="facetrace-tasks", daemon=True)
        self.running: int | None = None
        self._stopping = threading.Event()
        self._heart = threading.Thread(target=self._beat, name="facetrace-lease", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self._heart.start()

    def enqueue(self, task_id: int) -> None:
        self.queue.put(task_id)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the task in hand (up to ``timeout``); queued ones run at the next start
        (or in another process)."""
        self._stopping.set()
        self.queue.put(None)
        self.thread.join(timeout)
        self._heart.join(timeout)

    def _work(self) -> None:
        wait = 0.0  # at start, look in the table at once
        while not self._stopping.is_set():
            try:
                first = self.queue.get(timeout=wait) if wait else self.queue.get_nowait()
            except queue.Empty:
                first = -1
            wait = self.runtime.settings.task_poll_seconds
            if first is None:
                return
            with self.runtime.lock:
                found = tasks.pending(self.runtime.engine)
            for task_id in ([first] if first > 0 else []) + found:
                if self._stopping.is_set():
                    return
                self._run(task_id)

    def _run(self, task_id: int) -> None:
        engine, lease = self.runtime.engine, self.runtime.settings.task_lease_seconds
        try:
            with self.runtime.lock:
                self.running = task_id
                tasks.run(engine, task_id, lease_seconds=lease)
        except Exception:  # recorded on the task; the runner goes on with the next
            log.exception("task %s", task_id)
        finally:
            self.running = None

    def _beat(self) -> None:
        """Renew the running task's claim a few times per lease, without the engine's
        lock (the task holds it); the database orders the writes."""
        every = self.runtime.settings.task_lease_seconds / 4
        while not self._stopping.wait(every):
            task_id = self.running
            if task_id is None:
                continue
            try:
                tasks.renew(self.runtime.engine, task_id)
            except Exception:  # a busy database: renewed at the next beat
                log.warning("could not renew the claim on task %s", task_id, exc_info=True)


@dataclass
class Runtime:
    """The engine of this process, used by one request at a time (SQLite, the embedded
    index's writer and the face models are not shared across threads), off the
    event loop."""

    engine: FaceTrace
    settings: Settings
    limits: Limits
    lock: threading.Lock = field(default_factory=threading.Lock)
    runner: TaskRunner | None = None

    def start_tasks(self) -> None:
        self.runner = TaskRunner(self)
        self.runner.start()

    def stop_tasks(self) -> None:
        if self.runner is not None:
            self.runner.stop()

    async def submit(
        self, actor: Actor, kind: TaskKind, request: dict[str, Any], payload: bytes | None = None
    ) -> TaskRecord:
        """Store a task (its permission checked now) and queue it; returns it queued."""
        record = await self.run(tasks.submit, actor, request, payload, kind=kind)
        assert self.runner is not None
        self.runner.enqueue(record.id)
        return record

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``func(engine, *args, **kwargs)`` in a worker thread, holding the lock."""

        def call() -> T:
            with self.lock:
                return func(self.engine, *args, **kwargs)

        return await anyio.to_thread.run_sync(call)

    async def public_optout(self, address: str, photo: bytes) -> optout.OptOutReceipt:
        """A public opt-out request (no account): rate-limited per address, and answered
        after the same time whether or not the person was found."""
        started = time.monotonic()
        self.limits.optout_per_address.check(address)
        try:
            return await self.run(optout.request_optout, PUBLIC, photo)
        finally:
            wait = self.settings.public_optout_seconds - (time.monotonic() - started)
            if wait > 0:
                await anyio.sleep(wait)

    async def analyse(self, photo: bytes) -> ProbePhoto:
        """Decode and analyse a probe photo in a worker thread, without the engine's lock:
        the costly part of a search runs on every core while others use the engine."""
        return await anyio.to_thread.run_sync(self.engine.read_probe, photo)

    async def authenticate(self, request: Request, *, csrf: str | None = None) -> Actor:
        """The actor a request speaks for: its API key, else its session cookie (and,
        for a request that changes something, the session's CSRF token in a header,
        or ``csrf`` from a web form); 401 or 403 (audited) otherwise."""
        return (await self.identify(request, csrf=csrf))[0]

    async def identify(self, request: Request, *, csrf: str | None = None) -> tuple[Actor, str]:
        """:meth:`authenticate`, with the session's CSRF token for the pages to embed in
        their forms (empty for an API key, which needs none)."""
        token = bearer_token(request.headers)
        cookie = request.cookies.get(SESSION_COOKIE)
        unsafe = request.method not in SAFE_METHODS
        given = csrf if csrf is not None else request.headers.get(CSRF_HEADER)

        attempt = f"{request.method} {request.url.path}"

        def check(engine: FaceTrace) -> tuple[Actor, str]:
            try:
                if token:
                    return access.authenticate(engine, token, ""), ""
                if not cookie:
                    raise AccessDeniedError("sign in, or send an API key (header X-API-Key)")
                actor, expected = sessions.authenticate_session(engine, cookie)
            except AccessDeniedError as exc:
                access.audit_refusal(engine, "unauthenticated", attempt, str(exc))
                raise Unauthenticated(str(exc).removeprefix("access denied: ")) from None
            if unsafe and not sessions.csrf_matches(expected, given):
                access.audit_refusal(
                    engine, actor.label, attempt, "missing or wrong CSRF token", org=actor.org_id
                )
                raise AccessDeniedError(f"access denied: send the session's {CSRF_HEADER} header")
            return actor, expected

        return await self.run(check)


def set_session_cookie(response: Response, request: Request, token: str, hours: float) -> None:
    """The signed-in session's cookie: HttpOnly, SameSite=Strict, Secure over HTTPS."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(hours * 3600),
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def runtime(request: Request) -> Runtime:
    rt = request.app.state.runtime
    assert isinstance(rt, Runtime)
    return rt


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
