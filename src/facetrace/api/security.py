"""Who is asking, how often, and how much they may send.

- API keys travel in the ``X-API-Key`` header (or ``Authorization: Bearer``) and are
  checked by the same :func:`~facetrace.governance.access.authenticate` as the CLI's.
  The API has no bootstrap admin: the first admin is made with the CLI.
- Rate limits are token buckets per key and per client address: kept in the process
  on SQLite (one process), and in the database's ``rate_buckets`` table on PostgreSQL,
  where several API processes share each bucket (:func:`rate_limiter`).
- Bodies are capped while they stream: a declared length over the cap is refused
  before anything is read, and a body that grows past it is cut off there.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sqlalchemy import Engine, case, delete
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facetrace.api.errors import BodyTooLarge, RateLimited, error_body

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-API-Key"


def bearer_token(headers: MutableMapping[str, str] | Any) -> str | None:
    """The API key a request carries, if any."""
    token = headers.get(TOKEN_HEADER)
    if token:
        return str(token).strip()
    auth = headers.get("Authorization") or ""
    scheme, _, value = str(auth).partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class RateLimiter:
    """Token buckets: ``per_minute`` requests a minute per key, with bursts up to
    ``burst``. Thread-safe; the oldest buckets are dropped past ``max_keys``."""

    def __init__(
        self,
        per_minute: float,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, math.ceil(per_minute / 6)))
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Take one token for ``key`` or raise :class:`RateLimited` with the wait."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise RateLimited((1.0 - tokens) / self.rate)
            self._buckets[key] = (tokens - 1.0, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)


class SharedRateLimiter:
    """:class:`RateLimiter`'s token buckets as rows of ``rate_buckets``, which every
    process on the database shares: a request takes its token in one atomic upsert
    (``INSERT ... ON CONFLICT DO UPDATE``, a row lock on PostgreSQL), so N processes
    grant ``per_minute`` in all, not N times it. Keys are stored as their SHA-256.

    ``clock``: seconds since the epoch (every API machine's clock, kept by NTP; a
    bucket never refills backwards when two disagree). If the database cannot be
    reached, the request is allowed: a rate limit is no reason to refuse service.
    """

    PRUNE_EVERY = 1_000
    """Checks between deletions of full buckets (rows whose wait is long over)."""

    def __init__(
        self,
        engine: Engine,
        scope: str,
        per_minute: float,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.engine = engine
        self.scope = scope
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, math.ceil(per_minute / 6)))
        self.clock = clock
        self._checks = 0

    def check(self, key: str) -> None:
        """Take one token for ``key`` or raise :class:`RateLimited` with the wait."""
        from facetrace.store import schema

        b = schema.rate_buckets
        now = self.clock()
        elapsed = case((b.c.updated < now, now - b.c.updated), else_=0.0)
        refill = b.c.tokens + elapsed * self.rate
        refilled = case((refill > self.burst, self.burst), else_=refill)
        digest = hashlib.sha256(key.encode()).hexdigest()
        stmt = _upsert(self.engine)(b).values(
            scope=self.scope, key=digest, tokens=self.burst - 1.0, updated=now, allowed=True
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[b.c.scope, b.c.key],
            set_={
                "tokens": case((refilled >= 1.0, refilled - 1.0), else_=refilled),
                "updated": now,
                "allowed": refilled >= 1.0,
            },
        ).returning(b.c.allowed, b.c.tokens)
        try:
            with self.engine.begin() as conn:
                allowed, tokens = conn.execute(stmt).one()
                self._checks += 1
                if self._checks % self.PRUNE_EVERY == 0:
                    full = now - self.burst / self.rate
                    conn.execute(delete(b).where(b.c.scope == self.scope, b.c.updated < full))
        except SQLAlchemyError:
            log.warning("rate limit %s not checked: the database did not answer", self.scope)
            return
        if not allowed:
            raise RateLimited((1.0 - tokens) / self.rate)


def _upsert(engine: Engine) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_do_update``)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


def rate_limiter(engine: Engine, scope: str, per_minute: float) -> RateLimiter | SharedRateLimiter:
    """The one place the kind of limiter is chosen: shared through the database when
    it is a server that several processes use (PostgreSQL), else in this process."""
    if engine.dialect.name == "sqlite":
        return RateLimiter(per_minute)
    return SharedRateLimiter(engine, scope, per_minute)


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413, without reading on."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_413(send, self.max_bytes)
            return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_413(send, self.max_bytes)


async def _send_413(send: Callable[[Message], Awaitable[None]], limit: int) -> None:
    import json

    body = json.dumps(
        error_body("payload_too_large", f"the request body is larger than {limit} bytes")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
