"""One JSON error shape for every failure: ``{"error": {"status", "code", "message"}}``.

Handlers turn HTTP errors, request validation errors and camsight's own errors into
that shape; anything unexpected becomes a bare 500 so no traceback or internal detail
(paths, SQL) ever reaches a client.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from camsight.auth.errors import (
    AccountConflict,
    AccountError,
    InvalidCredentials,
    PasswordPolicyError,
    RateLimited,
)
from camsight.errors import CamsightError, ConfigError, NotFoundError, StoreError

log = logging.getLogger(__name__)

#: Machine-readable codes for the statuses the API answers with.
CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(StarletteHTTPException):
    """An HTTP error with an explicit code (e.g. ``password_change_required``)."""

    def __init__(
        self, status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, message, headers)
        self.code = code or CODES.get(status, "error")


def error_response(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The error body every handler answers with."""
    body = {"error": {"status": status, "code": code or CODES.get(status, "error"), "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _status_of(exc: CamsightError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, InvalidCredentials):
        return 401
    if isinstance(exc, RateLimited):
        return 429
    if isinstance(exc, AccountConflict):
        return 409  # the last admin, or an admin disabling, demoting or removing themselves
    if isinstance(exc, StoreError):
        return 500
    # ConfigError, QueryError, SearchError, AccountError, PasswordPolicyError and the rest are
    # the caller's to fix: their one-line messages are written for users.
    return 400


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("query", "limit") -> "limit"; ("body", "role") -> "role": the source is implied by the method.
    parts = [str(p) for p in loc if p not in ("query", "path", "body", "header", "cookie")]
    return ".".join(parts) or "request"


def _method_table(app: Any) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    # From the published document, where included routers are already flattened; made once.
    table = getattr(app.state, "allowed_methods", None)
    if table is None:
        table = []
        for path, operations in app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))
            table.append((re.compile(f"^{pattern}$"), frozenset(m.upper() for m in operations)))
        app.state.allowed_methods = table
    return table


def allowed_methods(request: Request) -> list[str]:
    """Every method the API takes at the request's path, sorted (none: not an API path)."""
    path = request.url.path
    methods: set[str] = set()
    for pattern, taken in _method_table(request.app):
        if pattern.match(path):
            methods |= taken
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; call once on a new app."""

    @app.exception_handler(StarletteHTTPException)
    def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        code = getattr(exc, "code", None)
        message = exc.detail if isinstance(exc.detail, str) else CODES.get(exc.status_code, "error")
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the methods of the first route of the path (GET of
            # /cameras/{name}, not its PATCH and DELETE): name them all.
            allowed = allowed_methods(_request)
            if _request.method == "OPTIONS" and allowed:
                return Response(status_code=204, headers={"Allow": ", ".join([*allowed, "OPTIONS"])})
            headers["Allow"] = ", ".join(allowed)
            message = f"{_request.method} is not allowed here (allowed: {headers['Allow']})"
        return error_response(exc.status_code, message, code, headers or None)

    @app.exception_handler(RequestValidationError)
    def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # 400 rather than FastAPI's 422: a malformed request is a bad request to every client.
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        field = _field(first.get("loc", ()))
        reason = str(first.get("msg", "invalid value"))
        body = {
            "error": {
                "status": 400,
                "code": "validation_error",
                "message": f"{field}: {reason}",
                "field": field,
                "reason": reason,
            }
        }
        return JSONResponse(body, status_code=400)

    @app.exception_handler(CamsightError)
    def _camsight(_request: Request, exc: CamsightError) -> JSONResponse:
        status = _status_of(exc)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        if status >= 500:
            # Store errors can name files and database details: log them, tell the client little.
            log.error("request failed: %s", exc)
            return error_response(status, "the server could not complete the request")
        code = {401: "unauthorized", 404: "not_found", 409: "conflict", 429: "rate_limited"}.get(status)
        if isinstance(exc, (AccountError, PasswordPolicyError, ConfigError)) and status != 409:
            code = "invalid"
        return error_response(status, str(exc).splitlines()[0] if str(exc) else "bad request", code, headers)

    @app.exception_handler(Exception)
    def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in API request", exc_info=exc)
        return error_response(500, "internal error")
