"""The control plane's shared state: pause flags, drain slots, the clock.

Pause is a persistent Redis flag that every drain checks before it takes a
batch, so it holds for workers started later and survives restarts (unlike
Celery's `cancel_consumer` broadcasts).
"""

from __future__ import annotations

import json
import secrets
import time

import redis

from .keys import Keys


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
        (sec, usec), offset = pipe.execute()
        return sec + usec / 1e6 + float(offset or 0.0)

    def paused_and_now(self, sender: str) -> tuple[dict | None, float]:
        """`paused(sender)` and `now()` in one round trip (the drain asks both
        before every batch)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.mget(self.keys.paused, self.keys.sender_paused(sender))
        pipe.time()
        if self.test_clock:
            pipe.get(self.keys.clock)
        replies = pipe.execute()
        (every, mine), (sec, usec) = replies[0], replies[1]
        offset = float(replies[2] or 0.0) if self.test_clock else 0.0
        raw = every or mine
        return (json.loads(raw) if raw else None), sec + usec / 1e6 + offset

    def set_clock_offset(self, seconds: float) -> None:
        self.r.set(self.keys.clock, repr(float(seconds)))

    # -- pause -----------------------------------------------------------------
    def pause(self, *, sender: str | None = None, reason: str = "operator",
              code: int | None = None, by: str = "") -> None:
        key = self.keys.sender_paused(sender) if sender else self.keys.paused
        info = {"reason": reason, "code": code, "since": time.time(), "by": by}
        self.r.set(key, json.dumps(info))

    def resume(self, *, sender: str | None = None, reason: str | None = None) -> bool:
        """Lift a pause; with `reason`, only a pause set for that reason."""
        key = self.keys.sender_paused(sender) if sender else self.keys.paused
        if reason is not None:
            info = self._info(key)
            if info is None or info.get("reason") != reason:
                return False
        return bool(self.r.delete(key))

    def paused(self, sender: str | None = None) -> dict | None:
        """Why sending is paused for `sender` (global first), or None."""
        if not sender:
            return self._info(self.keys.paused)
        every, mine = self.r.mget(self.keys.paused, self.keys.sender_paused(sender))
        raw = every or mine
        return json.loads(raw) if raw else None

    def _info(self, key: str) -> dict | None:
        raw = self.r.get(key)
        return json.loads(raw) if raw else None

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
        key = self.keys.drains(sender)
        if self.r.zscore(key, token) is None:
            return False
        self.r.zadd(key, {token: (time.time() + ttl) * 1000}, xx=True)
        return True

    def release_slot(self, sender: str, token: str) -> None:
        self.r.zrem(self.keys.drains(sender), token)

    def live_slots(self, sender: str) -> int:
        key = self.keys.drains(sender)
        self.r.zremrangebyscore(key, "-inf", time.time() * 1000)
        return self.r.zcard(key)


# KEYS[1] slot zset; ARGV: now_ms, ttl_ms, want, token...
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local free = tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[1])
local out = {}
local i = 4
while free > 0 and ARGV[i] do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[i])
  table.insert(out, ARGV[i])
  free = free - 1
  i = i + 1
end
return out
"""
