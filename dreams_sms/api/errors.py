"""One JSON shape for every error the API answers, and the handlers that make it.

    {"error": {"code": "invalid", "message": "to: ...", "field": "to"}}

`code` is for programs (a short fixed word), `message` for people, `field`
names the input at fault when there is one. Nothing a client sent in a header
(an API key above all) and no traceback ever reaches an error body; a server
fault is logged here and answered as `internal`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from dreams_sms.errors import BulkInterrupted, DreamsError, NotReplicated, ValidationError

log = logging.getLogger("dreams_sms.api")


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class Error(BaseModel):
    """What every 4xx and 5xx answer carries."""

    error: ErrorBody


class ApiError(DreamsError):
    """A refusal with its HTTP status, code and (optionally) the field at fault."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.field = field
        self.headers = headers or {}


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str = "a valid API key is required: "
                 "Authorization: Bearer dsms_..."):
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class BodyTooLarge(ApiError):
    status, code = 413, "too_large"


class UnsupportedMedia(ApiError):
    status, code = 415, "unsupported_media_type"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, wait: float):
        seconds = max(1, math.ceil(wait))
        super().__init__(f"too many requests for this API key; retry in {seconds} s",
                         headers={"Retry-After": str(seconds)})


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = Error(error=ErrorBody(code=code, message=message, field=field))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


#: The error answers every route may give, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Error, "description": what} for status, what in (
        (401, "No API key, or one that is unknown or revoked"),
        (403, "The API key may not use this sender"),
        (404, "No such message, campaign or route (or not one of the key's senders)"),
        (413, "The request body is too large"),
        (422, "Invalid input; `field` names it"),
        (429, "Rate limit of the API key reached; see Retry-After"),
        (500, "A fault of the server"),
        (503, "Redis cannot be reached"),
    )
}

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large",
               415: "unsupported_media_type"}


def _field(loc: tuple[int | str, ...] | list[int | str]) -> str | None:
    """`("body", "options", "reminder")` -> `options.reminder`; where the input is wrong."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or (str(loc[0]) if loc else None)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the one shape."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, str(exc), exc.field, exc.headers)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ValidationError)
        return error_response(422, "invalid", str(exc), exc.field)

    async def request_invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        first = errors[0] if errors else {}
        field = _field(first.get("loc", ()))
        # pydantic's own words, never the input it quotes (it may be long, or private).
        what = str(first.get("msg", "invalid input"))
        message = f"{field}: {what}" if field else what
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        return error_response(422, "invalid", message, field)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (say, not UTF-8)
            return error_response(422, "invalid", "body: not readable as JSON (UTF-8)",
                                  "body")
        code = _HTTP_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), None,
                              dict(exc.headers or {}))

    async def interrupted(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BulkInterrupted)
        cause = getattr(exc.__cause__, "error", None)
        done = ("an unknown number of rows" if exc.committed is None
                else f"the first {exc.committed} rows")
        message = (f"the upload stopped after {done} were queued in campaign {exc.campaign}; "
                   f"send the same body again with campaign={exc.campaign}&resume=true to "
                   "queue the rest")
        if isinstance(cause, ApiError):
            return error_response(cause.status, cause.code, f"{cause}; {message}", "body")
        log.warning("campaign upload interrupted: %s", exc)
        return error_response(503, "interrupted", message, "body")

    async def redis_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("redis: %s", type(exc).__name__)
        return error_response(503, "unavailable", "the queue (Redis) cannot be reached; "
                              "retry later", headers={"Retry-After": "5"})

    async def not_replicated(request: Request, exc: Exception) -> JSONResponse:
        # Queued on the Redis master, not yet on a replica: a failover could lose it.
        # The same Idempotency-Key makes the retry safe.
        log.warning("not confirmed by a replica: %s", exc)
        return error_response(503, "not_replicated", f"{exc}; retry with the same "
                              "Idempotency-Key", headers={"Retry-After": "1"})

    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(ValidationError, invalid)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(BulkInterrupted, interrupted)
    app.add_exception_handler(redis.RedisError, redis_down)
    app.add_exception_handler(NotReplicated, not_replicated)
    app.add_exception_handler(Exception, internal)
