"""The Celery worker: thin tasks over `drain`, `delayed`, `balance`.

Run it with `celery -A dreams_sms.worker worker -Q dreams.send,dreams.ops`
and beat with `celery -A dreams_sms.worker beat`. Settings come from the
environment (see `config`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import asdict, dataclass

import redis
from celery import signals

from dreams_sms.config import Settings
from dreams_sms.errors import ConfigError
from dreams_sms.ops.metrics import RedisEvents
from dreams_sms.provider.client import DreamsClient
from dreams_sms.provider.oauth import OAuthClient
from dreams_sms.provider.reconcile import SandboxReconciler
from dreams_sms.provider.redact import RedactingFilter
from dreams_sms.queue.control import Control
from dreams_sms.queue.delayed import Delayed
from dreams_sms.queue.keys import GROUP, Keys
from dreams_sms.queue.quota import DailyQuota
from dreams_sms.queue.rate import Gcra
from dreams_sms.queue.redis_policy import check_eviction
from dreams_sms.queue.tokenstore import RedisTokenStore, SharedTokenHolder
from dreams_sms.worker import balance as balance_check
from dreams_sms.worker.app import BALANCE, DRAIN, TICK, make_app, publish_drain
from dreams_sms.worker.dispatch import kick, slot_ttl
from dreams_sms.worker.drain import Drainer

log = logging.getLogger("dreams_sms.worker.tasks")

try:
    settings = Settings.from_env()
except ConfigError as exc:  # one clear line, not a traceback, when a setting is wrong
    raise SystemExit(f"dreams-sms: {exc}") from None
app = make_app(settings)
# The process's current app: Flower's task page formats times with the current
# app's time zone, its task list with this one's; one zone throughout.
app.set_current()


@signals.worker_init.connect
@signals.beat_init.connect
def _check_redis(**_: object) -> None:
    """Refuse to start on a Redis that may evict queued messages or quota counters."""
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        check_eviction(r, allow=settings.allow_eviction)
    except ConfigError as exc:
        log.critical("dreams-sms: %s", exc)
        raise SystemExit(f"dreams-sms: {exc}") from None
    except redis.RedisError:
        pass  # not reachable yet: Celery's own connection retries say so
    finally:
        r.close()


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _redact_logs(logger: logging.Logger, **_: object) -> None:
    for handler in logger.handlers:
        handler.addFilter(RedactingFilter())

#: How long one drain task keeps taking batches before handing over to the queue,
#: so chains of different senders take turns on the worker's slots.
DRAIN_BUDGET = 5.0
#: How long a drain chain waits out a Redis outage before giving up (beat restarts it).
REDIS_OUTAGE_GRACE = 60.0


@dataclass
class Context:
    r: redis.Redis
    keys: Keys
    control: Control
    quota: DailyQuota
    delayed: Delayed
    client: DreamsClient
    drainer: Drainer


_ctx: tuple[int, Context] | None = None


def context() -> Context:
    """Per-process clients, built after the pool forks."""
    global _ctx
    if _ctx is not None and _ctx[0] == os.getpid():
        return _ctx[1]
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True,
                             health_check_interval=25)
    check_eviction(r, allow=settings.allow_eviction)
    keys = Keys(settings.prefix)
    control = Control(r, keys, test_clock=settings.test_clock)
    quota = DailyQuota(r, prefix=settings.prefix, tz=settings.tz)
    events = RedisEvents(r, keys)
    token = None
    if settings.oauth_enabled:
        token = SharedTokenHolder(OAuthClient(settings), RedisTokenStore(r, keys.token))
    client = DreamsClient(settings, token=token, on_call=events.call)
    gcra = Gcra(r, keys.gcra, rate=settings.rate_per_second,
                burst=settings.batch_size) if settings.rate_per_second else None
    reconciler = SandboxReconciler(settings.reconcile_url) \
        if settings.on_unknown == "reconcile" else None
    consumer = f"{socket.gethostname()}:{os.getpid()}"
    drainer = Drainer(r=r, settings=settings, provider=client, consumer=consumer, quota=quota,
                      control=control, gcra=gcra, reconciler=reconciler, events=events)
    ctx = Context(r, keys, control, quota, Delayed(r, keys), client, drainer)
    _ctx = (os.getpid(), ctx)
    return ctx


@app.task(name=DRAIN, ignore_result=True)
def drain(sender: str, token: str) -> dict:
    """Take batches for `sender` for a short while, then pass the chain on."""
    c = context()
    try:
        return _drain(c, sender, token)
    finally:
        c.drainer.events.flush()


def _drain(c: Context, sender: str, token: str) -> dict:
    ttl = slot_ttl(settings)
    beat = f"slot:{sender}:{token}"
    # The slot is kept alive as long as the pass is, however long a call takes.
    c.drainer.heartbeat.every(beat, lambda: c.control.refresh_slot(sender, token, ttl))
    try:
        return _drain_loop(c, sender, token, ttl)
    finally:
        c.drainer.heartbeat.forget(beat)
        try:
            c.drainer.hand_back(sender)
        except redis.RedisError as exc:  # they come back through the takeover timer
            log.warning("could not hand back entries of %s: %s", sender, exc)


def _drain_loop(c: Context, sender: str, token: str, ttl: float) -> dict:
    deadline = time.monotonic() + DRAIN_BUDGET
    total = None
    outage = 0.0
    refreshed = 0.0
    while True:
        try:
            if time.monotonic() - refreshed >= 1.0:
                if not c.control.refresh_slot(sender, token, ttl):
                    return {"sender": sender, "stop": "slot-lost"}
                refreshed = time.monotonic()
            report = c.drainer.drain_once(sender)
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            # Redis restarting: hold the chain instead of dropping it; whatever
            # we held is still pending in the stream and will be settled.
            if outage > REDIS_OUTAGE_GRACE:
                raise
            log.warning("redis unavailable (%s); drain of %s waits", exc, sender)
            time.sleep(1.0)
            outage += 1.0
            continue
        outage = 0.0
        if total is None:
            total = report
        else:
            total.add(report)
        if report.stop:
            c.control.release_slot(sender, token)
            return total.summary(sender)
        if time.monotonic() >= deadline:
            publish_drain(app, sender, token)
            return total.summary(sender)


@app.task(name=TICK, ignore_result=True, send_events=False)
def tick() -> dict:
    """Every second: promote due delayed jobs, start chains where work waits."""
    c = context()
    now = c.control.now()
    promoted = c.delayed.promote(now)
    started = 0
    if not c.control.paused():
        for sender in sorted(c.r.smembers(c.keys.senders)):
            if c.control.paused(sender) or c.quota.is_closed(sender, now):
                continue
            depth = sum(c.r.xlen(s) for s in c.keys.streams(sender))
            if depth == 0:
                continue
            started += kick(app, c.control, settings, sender,
                            want=-(-depth // settings.batch_size))
    if c.r.set(f"{c.keys.prefix}:janitor", "1", nx=True, ex=60):
        forget_idle_consumers(c.r, c.keys)
    return {"promoted": promoted, "started": started}


def forget_idle_consumers(r: redis.Redis, keys: Keys, idle_ms: int = 3_600_000) -> int:
    """Each worker process is a consumer; drop those long gone with nothing pending."""
    dropped = 0
    for sender in r.smembers(keys.senders):
        for stream in keys.streams(sender):
            try:
                consumers = r.xinfo_consumers(stream, GROUP)
            except redis.ResponseError:
                continue
            for info in consumers:
                if info["pending"] == 0 and info["idle"] > idle_ms:
                    r.xgroup_delconsumer(stream, GROUP, info["name"])
                    dropped += 1
    return dropped


@app.task(name=BALANCE, ignore_result=True)
def check_balance() -> dict:
    """Pause when the balance cannot cover the next batch; resume when it can."""
    c = context()
    result = balance_check.check(c.r, c.keys, c.control, c.client, settings)
    if result.resumed:
        for sender in sorted(c.r.smembers(c.keys.senders)):
            kick(app, c.control, settings, sender)
    return asdict(result)
