"""Connecting to the data plane's Redis: one node, or the master of a Sentinel set.

Every process (producer, worker, beat's checks, CLI, exporter) gets its client
here, so a `sentinel://` URL means the same thing everywhere: ask the sentinels
for the master, and ask again after a failover. And `confirmed` is the one
place that says whether a write reached the replicas it must before a
provider call (or an acknowledgement to a producer) may rely on it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from dreams_sms.config import Settings

#: Sentinel mode: ride out a failover (a promotion takes seconds) on commands
#: that are safe to repeat. About 20 s of retries in all.
FAILOVER_RETRY = Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=14,
                       supported_errors=(redis.ConnectionError, redis.TimeoutError))
#: No retry: the caller must learn that a write may not have happened.
NO_RETRY = Retry(ExponentialBackoff(), retries=0)


def connect(settings: Settings, *, retry: bool = True, **kwargs: Any) -> redis.Redis:
    """A client with `decode_responses`; `retry=False` for writes that must not repeat.

    Without Sentinel, redis-py's own retry policy applies (a few quick tries)
    unless `retry=False`.
    """
    kwargs.setdefault("decode_responses", True)
    target = settings.sentinel
    if target is None:
        if not retry:
            kwargs["retry"] = NO_RETRY
        if settings.redis_password and "password" not in kwargs:
            kwargs["password"] = settings.redis_password.reveal()
        return redis.Redis.from_url(settings.redis_url, **kwargs)
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
    if settings.sentinel_password:
        sentinel_kwargs["password"] = settings.sentinel_password.reveal()
    if settings.redis_password:
        kwargs.setdefault("password", settings.redis_password.reveal())
    kwargs.setdefault("socket_connect_timeout", 2.0)
    # A master frozen (not dead) must not hang a worker: nothing here blocks on
    # purpose, and a lease's WAIT is bounded well below this.
    kwargs.setdefault("socket_timeout", max(5.0, 4 * settings.replica_timeout))
    sentinel = Sentinel(list(target.hosts), sentinel_kwargs=sentinel_kwargs)
    client: redis.Redis = sentinel.master_for(
        target.master, db=target.db, retry=FAILOVER_RETRY if retry else NO_RETRY, **kwargs)
    return client


def run_confirmed(r: redis.Redis, script: Any, keys: list[str], args: list[Any],
                  confirm: tuple[int, int]) -> tuple[Any, int]:
    """Run a registered script, then `WAIT` on the same connection, in one round
    trip: (the script's reply, how many replicas acknowledged its writes)."""
    for _ in range(2):
        pipe = r.pipeline(transaction=False)
        pipe.evalsha(script.sha, len(keys), *keys, *args)
        pipe.wait(*confirm)
        try:
            reply, acks = pipe.execute()
        except redis.exceptions.NoScriptError:
            r.script_load(script.script)  # a new master after a failover knows no scripts
            continue
        return reply, int(acks)
    raise redis.exceptions.NoScriptError("script vanished twice")


class Replicas:
    """How many replicas a write must reach before it counts: the number configured,
    or as many as are connected if fewer (a master left alone after a failover
    goes on sending; a connected replica that lags stops it).

    The master's `connected_slaves` is read at most every `every` seconds.
    """

    def __init__(self, r: redis.Redis, required: int, timeout: float, *, every: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.r = r
        self.required = required
        self.timeout_ms = max(1, round(timeout * 1000))
        self.every = every
        self.clock = clock
        self._n = required
        self._at = -math.inf

    def wait_args(self) -> tuple[int, int] | None:
        """`WAIT` arguments (replicas, milliseconds), or None: nothing to confirm."""
        if self.clock() - self._at >= self.every:
            try:
                info = self.r.info("replication")
                self._n = min(self.required, int(info.get("connected_slaves", 0)))
            except redis.ResponseError:  # INFO refused (a managed service): assume them there
                self._n = self.required
            self._at = self.clock()
        return (self._n, self.timeout_ms) if self._n else None


def replicas(r: redis.Redis, settings: Settings) -> Replicas | None:
    """What `r`'s writes must reach, or None when settings ask no confirmation."""
    n = settings.replicas_to_confirm
    return Replicas(r, n, settings.replica_timeout) if n else None
