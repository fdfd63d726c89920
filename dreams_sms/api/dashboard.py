"""The campaign dashboard: one read-only page and the JSON it polls, behind the API key.

Flower shows Celery's tasks; this shows what an operator asks about: campaigns
and their progress, senders closed for today or paused, held messages to
settle, alerts. `/dashboard` is rendered on the server (it reads well without
JavaScript); a small script polls `/dashboard/data.json` and refreshes the page
in place. HTTP Basic: any user name, the password is an API key that `verify`
accepts. Nothing here writes to Redis, and a secret is never echoed or logged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Annotated

import redis as redis_lib
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from dreams_sms.api.overview import Overview, OverviewReader, dumps
from dreams_sms.api.page import render
from dreams_sms.config import Settings

#: How often the page polls data.json.
REFRESH_MS = 1500

#: The only files served from static/ (nothing else can be named through the URL).
ASSETS = {"dashboard.js": "text/javascript; charset=utf-8",
          "dashboard.css": "text/css; charset=utf-8"}

# Same-origin everything: the page runs no inline script and loads nothing from outside.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_NO_STORE = {**HEADERS, "Cache-Control": "no-store"}

_REALM = 'Basic realm="dreams-sms dashboard", charset="UTF-8"'
# At module level: FastAPI resolves the (postponed) annotations below in this namespace.
_BASIC = HTTPBasic(auto_error=False, realm="dreams-sms dashboard")


@cache
def _asset(name: str) -> bytes:
    return resources.files("dreams_sms.api").joinpath(f"static/{name}").read_bytes()


def decoded(r: redis_lib.Redis) -> redis_lib.Redis:
    """`r`, or a client on the same server that decodes replies, as the readers expect."""
    pool = r.connection_pool
    if pool.connection_kwargs.get("decode_responses"):
        return r
    kwargs = {**pool.connection_kwargs, "decode_responses": True}
    return redis_lib.Redis(connection_pool=redis_lib.ConnectionPool(
        connection_class=pool.connection_class, **kwargs))


def make_router(verify: Callable[[str], bool], redis: redis_lib.Redis,
                settings: Settings) -> APIRouter:
    """Routes under /dashboard; `verify(secret)` says whether an API key is valid.

    `redis` may decode replies or not: the readers get a decoding client either way.
    """
    reader = OverviewReader(decoded(redis), settings)

    def authorised(credentials: Annotated[HTTPBasicCredentials | None,
                                          Depends(_BASIC)]) -> None:
        # Any user name; the password is the key. Refused alike, whatever was wrong.
        if credentials is None or not credentials.password or not verify(credentials.password):
            raise HTTPException(401, "an API key is needed: any user name, the key as password",
                                headers={"WWW-Authenticate": _REALM, **_NO_STORE})

    router = APIRouter(prefix="/dashboard", tags=["dashboard"],
                       dependencies=[Depends(authorised)])

    def overview() -> Overview:
        try:
            return reader.read()
        except (OSError, redis_lib.RedisError) as exc:
            raise HTTPException(503, f"Redis is unavailable ({type(exc).__name__}); "
                                "the dashboard retries", headers=_NO_STORE) from None

    @router.get("", response_class=HTMLResponse, summary="The campaign dashboard (HTML)")
    def page(request: Request) -> HTMLResponse:
        html = render(overview(),
                      css=request.url_for("dashboard_asset", name="dashboard.css").path,
                      js=request.url_for("dashboard_asset", name="dashboard.js").path,
                      data=request.url_for("dashboard_data").path, every_ms=REFRESH_MS)
        return HTMLResponse(html, headers=_NO_STORE)

    @router.get("/data.json", name="dashboard_data",
                summary="The dashboard's figures: senders, campaigns, held, alerts")
    def data() -> Response:
        return Response(dumps(overview()), media_type="application/json", headers=_NO_STORE)

    @router.get("/static/{name}", name="dashboard_asset", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, "no such file")
        return Response(_asset(name), media_type=ASSETS[name],
                        headers={**HEADERS, "Cache-Control": "private, max-age=300",
                                 "ETag": f'"{_etag(name)}"'})

    return router


@cache
def _etag(name: str) -> str:
    return hashlib.sha256(_asset(name)).hexdigest()[:16]
