"""The control plane's shared state: pause flags, drain slots, the clock.

Pause is a persistent Redis flag that every drain checks before it takes a
batch, so it holds for workers started later and survives restarts (unlike
Celery's `cancel_consumer` broadcasts).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, cast

import redis

from dreams_sms.queue import scripts
from dreams_sms.queue.keys import Keys

#: Which reason `paused()` names first when several apply.
PAUSE_ORDER = {"operator": 0, "account": 1, "http": 2, "unknown": 3, "balance": 4}

# KEYS and ARGV: see queue/lua/acquire.lua.
_ACQUIRE = scripts.load("acquire")


class Control:
    def __init__(self, r: redis.Redis, keys: Keys, *, test_clock: bool = False):
        self.r = r
        self.keys = keys
        self.test_clock = test_clock
        self._acquire = r.register_script(_ACQUIRE)

    # -- clock -----------------------------------------------------------------
    def now(self) -> float:
        """Redis server time (one clock for every worker), plus a test offset."""
        if not self.test_clock:
            sec, usec = self.r.time()
            return sec + usec / 1e6
        pipe = self.r.pipeline(transaction=False)
        pipe.time()
        pipe.get(self.keys.clock)
        (sec, usec), offset = pipe.execute()  # pipelined replies are untyped
        now: float = sec + usec / 1e6 + float(offset or 0.0)
        return now

    def set_clock_offset(self, seconds: float) -> None:
        self.r.set(self.keys.clock, repr(float(seconds)))

    # -- pause -----------------------------------------------------------------
    # Sending stops while any reason applies; each reason is lifted on its own, so
    # a -113 in flight never rewrites an operator's pause, and the beat, which lifts
    # only what it can check (balance, a provider that answers again), never lifts
    # an operator's or an account's.
    def pause(self, *, sender: str | None = None, reason: str = "operator",
              code: int | str | None = None, by: str = "") -> None:
        info = {"reason": reason, "code": code, "since": time.time(), "by": by}
        if sender:
            self.r.set(self.keys.sender_paused(sender), json.dumps(info))
        else:
            self.r.hset(self.keys.pauses, reason, json.dumps(info))

    def resume(self, *, sender: str | None = None, reason: str | None = None) -> bool:
        """Lift a pause; with `reason`, only that one (atomic: HDEL of one field)."""
        if sender:
            return bool(self.r.delete(self.keys.sender_paused(sender)))
        if reason is not None:
            return bool(self.r.hdel(self.keys.pauses, reason))
        return bool(self.r.delete(self.keys.pauses))

    def pauses(self) -> dict[str, dict[str, Any]]:
        """Every reason sending is paused for, with who set it and when."""
        # The client decodes replies (decode_responses=True): str, not bytes.
        every = cast("dict[str, str]", self.r.hgetall(self.keys.pauses))
        return {k: json.loads(v) for k, v in every.items()}

    def sender_pause(self, sender: str) -> dict[str, Any] | None:
        """Sender `sender`'s own pause (who set it and when), leaving global reasons aside."""
        raw = cast("str | None", self.r.get(self.keys.sender_paused(sender)))  # decoded
        return json.loads(raw) if raw else None

    def paused(self, sender: str | None = None) -> dict[str, Any] | None:
        """The weightiest reason sending is paused for `sender` (global first), or None."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.keys.pauses)
        if sender:
            pipe.get(self.keys.sender_paused(sender))
        replies = pipe.execute()
        every: dict[str, str] = replies[0]
        info: dict[str, Any] | None = None
        if every:
            reason = min(every, key=lambda r: (PAUSE_ORDER.get(r, len(PAUSE_ORDER)), r))
            info = json.loads(every[reason])
        elif sender and replies[1]:
            info = json.loads(replies[1])
        return info

    # -- drain slots -------------------------------------------------------------
    def acquire_slots(self, sender: str, want: int, ttl: float) -> list[str]:
        """Tokens for new drain chains, keeping at most `want` alive per sender."""
        tokens = [secrets.token_hex(6) for _ in range(max(want, 0))]
        if not tokens:
            return []
        got = self._acquire(keys=[self.keys.drains(sender)],
                            args=[int(time.time() * 1000), int(ttl * 1000), want, *tokens])
        return [t.decode() if isinstance(t, bytes) else t for t in got]

    def refresh_slot(self, sender: str, token: str, ttl: float) -> bool:
        """Keep a chain's slot; False when it expired (a new chain may own it)."""
        # One command: XX never adds a slot back, CH counts the one it moved on.
        until = (time.time() + ttl) * 1000
        return bool(self.r.zadd(self.keys.drains(sender), {token: until}, xx=True, ch=True))

    def release_slot(self, sender: str, token: str) -> None:
        self.r.zrem(self.keys.drains(sender), token)

    def live_slots(self, sender: str) -> int:
        key = self.keys.drains(sender)
        self.r.zremrangebyscore(key, "-inf", time.time() * 1000)
        return self.r.zcard(key)

