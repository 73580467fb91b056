"""The one table from errors to HTTP statuses and JSON bodies; never a traceback.

Every error response is ``{"error": {"code": ..., "message": ...}}``. facetrace's own
errors carry messages written for the person asking; anything else is logged on the
server with a request id and answered with that id only.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from facetrace.errors import (
    AccessDeniedError,
    AuditError,
    ConfigError,
    ConflictError,
    FaceTraceError,
    FetchError,
    ImageError,
    ImageTooLargeError,
    IndexBusyError,
    NotFoundError,
    SourceBlockedError,
    StorageFullError,
    UnknownSourceError,
    UnsupportedFormatError,
    UsageError,
    is_storage_full,
)

log = logging.getLogger("facetrace.api")

# The first entry an error is an instance of decides; order from narrow to broad.
ERROR_TABLE: tuple[tuple[type[FaceTraceError], int, str], ...] = (
    (AccessDeniedError, 403, "forbidden"),
    (UnknownSourceError, 404, "not_found"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (SourceBlockedError, 409, "source_blocked"),
    (UnsupportedFormatError, 415, "unsupported_media_type"),
    (ImageTooLargeError, 413, "image_too_large"),
    (ImageError, 422, "bad_image"),
    (UsageError, 400, "bad_request"),
    (FetchError, 400, "fetch_failed"),
    (StorageFullError, 507, "storage_full"),
    (IndexBusyError, 503, "busy"),
    (AuditError, 503, "audit_unavailable"),
    (ConfigError, 500, "server_misconfigured"),
)

_HTTP_CODES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
}


class Unauthenticated(HTTPException):
    """No key, or one that is unknown, revoked or expired: 401."""

    def __init__(self, message: str) -> None:
        super().__init__(401, message, headers={"WWW-Authenticate": "ApiKey"})


class RateLimited(HTTPException):
    """Too many requests: 429 with Retry-After (whole seconds)."""

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(
            429,
            f"too many requests; retry after {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


class BodyTooLarge(HTTPException):
    """The request body passed the upload cap; the rest is not read: 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": " ".join(message.split())}}


def status_of(exc: FaceTraceError) -> tuple[int, str]:
    """The status and code for one of facetrace's errors."""
    if is_storage_full(exc):
        return 507, "storage_full"
    for kind, status, code in ERROR_TABLE:
        if isinstance(exc, kind):
            return status, code
    return 500, "internal"


PageRenderer = Callable[[Request, int, str, str], Response | None]
"""Renders an error as a web page for the requests it claims (None: answer in JSON)."""


def install(app: FastAPI, pages: PageRenderer | None = None) -> None:
    """Register the handlers: facetrace errors, HTTP errors, validation, the rest. Each
    decides the status, code and message once; ``pages`` may render them as HTML."""

    def answer(
        request: Request,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        page = pages(request, status, code, message) if pages is not None else None
        if page is not None:
            return page
        return JSONResponse(error_body(code, message), status_code=status, headers=headers)

    @app.exception_handler(FaceTraceError)
    async def facetrace_error(request: Request, exc: FaceTraceError) -> Response:
        status, code = status_of(exc)
        message = str(exc)
        if status == 500:
            message = _log_unexpected(exc)
        return answer(request, status, code, message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return answer(request, exc.status_code, code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}")
        return answer(request, 422, "invalid_request", "; ".join(parts))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        if is_storage_full(exc):
            return answer(request, 507, "storage_full", "no space left on the server's disk")
        return answer(request, 500, "internal", _log_unexpected(exc))


def _log_unexpected(exc: BaseException) -> str:
    request_id = secrets.token_hex(6)
    log.error("request %s failed", request_id, exc_info=exc)
    return f"the server could not complete the request (request id {request_id})"
