"""The Celery tasks: thin shells over the chain, the delayed set and the balance check.

`register(app, root)` binds them to an app; importing this module builds
nothing. `dreams_sms.worker.celery` is where a worker process composes them
with settings from the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import cast

import redis
from celery import Celery

from dreams_sms.queue.keys import GROUP, Keys
from dreams_sms.worker import balance as balance_check
from dreams_sms.worker.app import BALANCE, DRAIN, TICK, publish_drain
from dreams_sms.worker.chain import Chain
from dreams_sms.worker.dispatch import kick, slot_ttl
from dreams_sms.worker.root import Root


def register(app: Celery, root: Callable[[], Root]) -> None:
    """Define the drain, tick and balance tasks on `app`; `root()` gives the
    process's parts (built on first use, after the pool forks)."""

    @app.task(name=DRAIN, ignore_result=True)
    def drain(sender: str, token: str) -> dict[str, object]:
        """Take batches for `sender` for a short while, then pass the chain on."""
        c = root()
        chain = Chain(c.drainer, c.control, slot_ttl=slot_ttl(c.settings),
                      publish=lambda s, t: publish_drain(app, s, t))
        return chain.run(sender, token)

    @app.task(name=TICK, ignore_result=True, send_events=False)
    def tick() -> dict[str, int]:
        """Every second: promote due delayed jobs, start chains where work waits."""
        c = root()
        now = c.control.now()
        promoted = c.delayed.promote(now)
        started = 0
        if not c.control.paused():
            for sender in sorted(_senders(c.r, c.keys)):
                if c.control.paused(sender) or c.quota.is_closed(sender, now):
                    continue
                depth = sum(c.r.xlen(s) for s in c.keys.streams(sender))
                if depth == 0:
                    continue
                started += kick(app, c.control, c.settings, sender,
                                want=-(-depth // c.settings.batch_size))
        if c.r.set(c.keys.janitor, "1", nx=True, ex=60):
            forget_idle_consumers(c.r, c.keys)
        return {"promoted": promoted, "started": started}

    @app.task(name=BALANCE, ignore_result=True)
    def check_balance() -> dict[str, object]:
        """Pause when the balance cannot cover the next batch; resume when it can."""
        c = root()
        result = balance_check.check(c.r, c.keys, c.control, c.client, c.settings)
        if result.resumed:
            for sender in sorted(_senders(c.r, c.keys)):
                kick(app, c.control, c.settings, sender)
        return asdict(result)


def _senders(r: redis.Redis, keys: Keys) -> set[str]:
    """Every sender that ever queued a message."""
    # The worker's client decodes replies (decode_responses=True): members are str.
    return cast("set[str]", r.smembers(keys.senders))


def forget_idle_consumers(r: redis.Redis, keys: Keys, idle_ms: int = 3_600_000) -> int:
    """Each worker process is a consumer; drop those long gone with nothing pending."""
    dropped = 0
    for sender in _senders(r, keys):
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
