"""Who is asking, how often, and how much they may send.

- API keys travel in the ``X-API-Key`` header (or ``Authorization: Bearer``) and are
  checked by the same :func:`~facetrace.governance.access.authenticate` as the CLI's.
  The API has no bootstrap admin: the first admin is made with the CLI.
- Rate limits are token buckets per key and per client address, kept in the process.
- Bodies are capped while they stream: a declared length over the cap is refused
  before anything is read, and a body that grows past it is cut off there.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facetrace.api.errors import BodyTooLarge, RateLimited, error_body

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
