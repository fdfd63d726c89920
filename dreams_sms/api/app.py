"""The HTTP API as an ASGI app: `create_app(settings)` for uvicorn and tests.

Stateless: everything lives in Redis (queues, statuses, API keys, rate
counters), so any number of replicas can run behind a proxy. Routes are
plain `def` where they only call Redis (FastAPI runs them on its thread
pool); the campaign upload is `async` so it can stream the body.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from fastapi import FastAPI

from dreams_sms.api import errors
from dreams_sms.api.dashboard import make_router as make_dashboard
from dreams_sms.api.keys import ApiKeys
from dreams_sms.api.limits import BodyLimit
from dreams_sms.api.ratelimit import RateLimits
from dreams_sms.api.routes import Context, health_router, make_router
from dreams_sms.config import Settings
from dreams_sms.producer import Producer
from dreams_sms.queue.connect import connect
from dreams_sms.queue.redis_policy import check_eviction

TITLE = "dreams-sms"
API_VERSION = "1.0.0"
DESCRIPTION = """Queue SMS for the Dreams SMS API from any language, and follow them.

Authenticate with `Authorization: Bearer <API key>` (`dreams-sms keys create
--sender NAME`); a key may use only its senders. Every error answers
`{"error": {"code", "message", "field"}}`.
"""
#: The route whose body is streamed (and so has the large body limit).
UPLOAD_PATH = "/v1/campaigns"


def create_app(settings: Settings | None = None, redis_client: redis.Redis | None = None,
               *, producer: Producer | None = None) -> FastAPI:
    """The API over `settings` (default: the environment) and a decoding Redis client."""
    settings = settings or Settings.from_env()
    r = redis_client
    if r is None:
        r = connect(settings, retry=False)  # a producer: a write is never silently repeated
        check_eviction(r, allow=settings.allow_eviction)
    producer = producer or Producer(settings, r=r)
    keys = ApiKeys(r, settings.prefix)
    ctx = Context(settings, r, producer, keys,
                  RateLimits(r, producer.keys, rate=settings.api_rate, burst=settings.api_burst))
    app = FastAPI(title=TITLE, version=API_VERSION, description=DESCRIPTION,
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json")
    app.state.ctx = ctx
    errors.install(app)
    app.add_middleware(BodyLimit, small=settings.api_max_request, large=settings.api_max_body,
                       streamed=frozenset({UPLOAD_PATH}))
    app.include_router(health_router(ctx))
    app.include_router(make_router(ctx))
    # The read-only dashboard, behind the same keys (HTTP Basic, the key as password);
    # not part of the JSON API's OpenAPI document (committed as docs/openapi.json).
    app.include_router(make_dashboard(verify=lambda secret: keys.verify(secret) is not None,
                                      redis=r, settings=settings), include_in_schema=False)
    return app


def app_from_env() -> FastAPI:
    """uvicorn's factory (`--factory dreams_sms.api.app:app_from_env`), for --workers N."""
    return create_app()


def openapi_document(app: FastAPI | None = None) -> dict[str, Any]:
    """The OpenAPI document the app serves (built without Redis when no app is given)."""
    if app is None:
        # Building routes touches no Redis: a client that never connects will do.
        app = create_app(Settings(), redis.Redis(decode_responses=True))
    return app.openapi()


def openapi_text(app: FastAPI | None = None) -> str:
    """docs/openapi.json's exact text: sorted, indented, ending in a newline."""
    return json.dumps(openapi_document(app), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
