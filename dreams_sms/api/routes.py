"""The routes: messages, campaigns, senders, each checked against the key's senders.

Every route but /healthz needs `Authorization: Bearer <API key>`; a key sees
and touches only its senders. What belongs to other senders answers 404, as
if it did not exist, so ids cannot be probed across keys.

Single messages go into one campaign per sender and day, `api.<YYYYMMDD>.<tag>`
(the tag is a hash of the sender name: ids stay within the producer's
alphabet), so a message id alone says which sender it belongs to, with no
extra write per message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, cast

import anyio
import anyio.from_thread
import redis
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dreams_sms.api import models, upload
from dreams_sms.api.errors import (
    ERROR_RESPONSES,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
)
from dreams_sms.api.keys import ApiKey, ApiKeys
from dreams_sms.api.ratelimit import RateLimits
from dreams_sms.config import Settings
from dreams_sms.errors import ValidationError
from dreams_sms.ops.bulkfile import read_rows
from dreams_sms.producer import Producer
from dreams_sms.queue import fields as cf
from dreams_sms.queue.quota import DailyQuota

MESSAGE_CAMPAIGN = "api."
MAX_IDEMPOTENCY_KEY = 180


@dataclass
class Context:
    """What the routes share: settings, Redis, the producer, keys and limits."""

    settings: Settings
    r: redis.Redis
    producer: Producer
    keys: ApiKeys
    limits: RateLimits

    @property
    def quota(self) -> DailyQuota:
        return DailyQuota(self.r, prefix=self.settings.prefix, tz=self.settings.tz)


def sender_tag(sender: str) -> str:
    return hashlib.sha256(sender.encode()).hexdigest()[:10]


def message_campaign(sender: str, now: float, settings: Settings) -> str:
    day = dt.datetime.fromtimestamp(now, settings.tz).strftime("%Y%m%d")
    return f"{MESSAGE_CAMPAIGN}{day}.{sender_tag(sender)}"


bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="An API key from `dreams-sms keys create` (dsms_...)")


def authenticated(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiKey:
    """The caller's API key (checked, and counted against its rate), or 401/429."""
    if creds is None:
        raise Unauthorized()
    ctx = cast("Context", request.app.state.ctx)
    key = ctx.keys.verify(creds.credentials)
    if key is None:
        raise Unauthorized("the API key is unknown or revoked")
    ctx.limits.check(key.id)
    return key


Key = Annotated[ApiKey, Depends(authenticated)]


def make_router(ctx: Context) -> APIRouter:
    router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)

    def may_send(key: ApiKey, sender: str) -> str:
        if not key.may_use(sender):
            raise Forbidden(f"this API key may not use sender {sender[:20]!r}", field="sender")
        return sender

    def owns(key: ApiKey, cid: str) -> bool:
        if cid.startswith(MESSAGE_CAMPAIGN):
            return cid.rpartition(".")[2] in {sender_tag(s) for s in key.senders}
        sender = cast("str | None", ctx.r.hget(ctx.producer.keys.campaign(cid), cf.SENDER))
        return sender is not None and key.may_use(sender)

    # -- messages -----------------------------------------------------------------
    @router.post("/messages", status_code=202, response_model=models.MessageQueued,
                 summary="Queue one message")
    def post_message(
        body: models.MessageIn, key: Key,
        idempotency_key: Annotated[str | None, Header(
            alias="Idempotency-Key", min_length=1, max_length=MAX_IDEMPOTENCY_KEY,
            description="the same key (per sender) within DREAMS_KEY_WINDOW returns the "
            "first message's id and queues nothing more")] = None,
    ) -> models.MessageQueued:
        sender = may_send(key, body.sender)
        now = ctx.producer.control.now()
        try:
            mid = ctx.producer.send(
                body.to, body.text, sender, priority=body.priority, send_at=body.send_at,
                expires_in=body.expires_in, expires_at=body.expires_at,
                key=f"api:{sender}:{idempotency_key}" if idempotency_key else None,
                campaign=message_campaign(sender, now, ctx.settings), **_options(body.options))
        except ValidationError as exc:
            if exc.field and exc.field not in models.MessageIn.model_fields:
                exc.field = f"options.{exc.field}"  # the producer names the option alone
            raise
        return models.MessageQueued(id=mid)

    @router.get("/messages/{message_id}", response_model=models.MessageState,
                summary="Where one message stands")
    def get_message(message_id: Annotated[str, Path(max_length=100)],
                    key: Key) -> models.MessageState:
        cid = message_id.rpartition("-")[0]
        try:
            if not cid or not owns(key, cid):
                raise ValidationError("unknown message id")
            st = ctx.producer.status(message_id)
        except ValidationError:
            raise NotFound(f"no message {message_id[:60]!r} for this API key's senders",
                           field="message_id") from None
        return models.MessageState(id=st.id, state=st.state, code=st.code,
                                   description=st.description)

    # -- campaigns ----------------------------------------------------------------
    @router.post(
        "/campaigns", status_code=201, response_model=models.CampaignQueued,
        summary="Queue a campaign from a CSV, JSON Lines or JSON body (streamed)",
        responses={415: {"model": ERROR_RESPONSES[422]["model"],
                         "description": "Not text/csv, application/x-ndjson or "
                                        "application/json"},
                   409: {"model": ERROR_RESPONSES[422]["model"],
                         "description": "The campaign id belongs to another sender"}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": models.ROW_SCHEMA}},
        }}},
    )
    async def post_campaign(
        request: Request, key: Key,
        sender: Annotated[str, Query(description="a sender name the API key may use")],
        campaign: Annotated[str | None, Query(
            max_length=64, description="campaign id (default: a new one)")] = None,
        priority: Annotated[models.Priority, Query()] = "normal",
        expires_in: Annotated[float | None, Query(
            description="rows not sent within this many seconds expire")] = None,
        expires_at: Annotated[float | None, Query(
            description="rows not sent by this time (epoch seconds) expire")] = None,
        resume: Annotated[bool, Query(
            description="queue the rest of an interrupted upload of the same body into "
            "`campaign`, never a row twice")] = False,
    ) -> models.CampaignQueued:
        may_send(key, sender)
        fmt = upload.format_of(request.headers.get("content-type"))
        if campaign is not None:
            await anyio.to_thread.run_sync(_check_campaign, ctx, campaign, sender)
        chunks = _chunks(request.stream())

        def pull() -> bytes:
            return anyio.from_thread.run(_next, chunks)

        def work() -> models.CampaignQueued:
            items = read_rows(upload.reader(pull), fmt=fmt,
                              max_text_length=ctx.settings.max_text_length)
            try:
                first = next(items, None)  # a bad header is refused before anything is queued
            except upload.BodyError as exc:
                raise exc.error from None
            feed = upload.RowFeed(itertools.chain([first] if first else [], items))
            res = ctx.producer.send_bulk(sender, feed, campaign=campaign, priority=priority,
                                         expires_in=expires_in, expires_at=expires_at,
                                         resume=resume)
            return feed.answer(res.campaign, res.queued, res.rejected, res.rejected_count)

        return await anyio.to_thread.run_sync(work)

    @router.get("/campaigns/{campaign_id}", response_model=models.CampaignState,
                summary="A campaign's counts")
    def get_campaign(campaign_id: Annotated[str, Path(max_length=100)],
                     key: Key) -> models.CampaignState:
        return _campaign_state(ctx, _owned_campaign(campaign_id, key))

    @router.post("/campaigns/{campaign_id}/cancel", response_model=models.CampaignState,
                 summary="Cancel what a campaign still has queued")
    def cancel_campaign(campaign_id: Annotated[str, Path(max_length=100)],
                        key: Key) -> models.CampaignState:
        cid = _owned_campaign(campaign_id, key)
        ctx.producer.cancel(cid)
        return _campaign_state(ctx, cid)

    def _owned_campaign(cid: str, key: ApiKey) -> str:
        if not owns(key, cid) or not ctx.r.exists(ctx.producer.keys.campaign(cid)):
            raise NotFound(f"no campaign {cid[:60]!r} for this API key's senders",
                           field="campaign_id")
        return cid

    # -- senders ------------------------------------------------------------------
    @router.get("/senders", response_model=models.Senders,
                summary="The key's senders: queued, deferred, daily use and limit, pauses")
    def get_senders(key: Key) -> models.Senders:
        return models.Senders(senders=[_sender_state(ctx, s) for s in key.senders])

    return router


def health_router(ctx: Context) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", response_model=models.Health, summary="Liveness and Redis",
                responses={503: ERROR_RESPONSES[503]})
    def healthz() -> models.Health:
        ctx.r.ping()
        return models.Health(status="ok")

    return router


def _options(options: dict[str, str | int] | None) -> dict[str, Any]:
    """sendsms options as keywords; the producer checks their names and values."""
    if not options:
        return {}
    reserved = {"to", "text", "sender", "send_at", "key", "priority", "expires_in",
                "expires_at", "campaign"}
    clash = sorted(reserved & set(options))
    if clash:
        raise ValidationError(f"options: {clash[0]!r} is not a sendsms option",
                              field=f"options.{clash[0]}")
    return dict(options)


def _check_campaign(ctx: Context, cid: str, sender: str) -> None:
    if cid.startswith(MESSAGE_CAMPAIGN):
        raise ValidationError(f"campaign ids starting with {MESSAGE_CAMPAIGN!r} are the API's "
                              "own (single messages)", field="campaign")
    owner = cast("str | None", ctx.r.hget(ctx.producer.keys.campaign(cid), cf.SENDER))
    if owner is not None and owner != sender:
        raise Conflict("this campaign id is in use by another sender; pick another",
                       field="campaign")


async def _chunks(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in stream:
        if chunk:
            yield chunk


async def _next(chunks: AsyncIterator[bytes]) -> bytes:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return b""


def _campaign_state(ctx: Context, cid: str) -> models.CampaignState:
    try:
        s = ctx.producer.campaign_status(cid)
    except ValidationError:
        raise NotFound(f"no campaign {cid[:60]!r}", field="campaign_id") from None
    return models.CampaignState(
        id=s.id, sender=s.sender, total=s.total, queued=s.queued, sending=s.sending,
        sent=s.sent, deferred=s.deferred, failed=s.failed, expired=s.expired,
        unknown=s.unknown, cancelled=s.cancelled,
        failures={str(code): n for code, n in sorted(s.failures.items())},
        closed_today=s.closed_today, done=s.done)


def _sender_state(ctx: Context, sender: str) -> models.SenderState:
    p = ctx.producer
    high, normal = (int(n) for n in _pipeline(ctx.r, lambda pipe: [
        pipe.xlen(k) for k in p.keys.streams(sender)]))
    now = p.control.now()
    quota = ctx.quota
    used, limit = quota.usage([sender], now)[sender]
    closed = quota.is_closed(sender, now)
    paused = p.control.paused(sender)
    queued = high + normal
    return models.SenderState(
        name=sender, queued=queued, high=high, deferred=queued if closed else 0,
        used_today=used, daily_limit=limit, closed_today=closed, paused=paused is not None,
        paused_why=str(paused.get("reason", "unknown")) if paused else None)


def _pipeline(r: redis.Redis, build: Callable[[Any], object]) -> list[Any]:
    pipe = r.pipeline(transaction=False)
    build(pipe)
    return pipe.execute()
