"""A global send-rate limiter (GCRA) shared by every worker through Redis.

Celery's `rate_limit` is per worker instance; the provider's per-second limit is
per account. GCRA keeps one number per key (the theoretical arrival time, TAT)
and reads the clock with Redis TIME inside the script, so worker clock skew
cannot loosen the limit. Times are integer microseconds: Lua prints floats
with 14 significant digits, which would round an epoch to 0.1 ms.
"""

from __future__ import annotations

import redis as redis_lib

from dreams_sms.queue import scripts

# KEYS and ARGV: see queue/lua/gcra.lua.
_GCRA = scripts.load("gcra")


class Gcra:
    """`rate` units per second with up to `burst` at once; rate 0 disables the limiter."""

    def __init__(self, redis: redis_lib.Redis, key: str, *, rate: float, burst: int):
        if rate < 0:
            raise ValueError(f"rate must be >= 0, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.redis = redis
        self.key = key
        self.rate = rate
        self.burst = burst
        self._interval_us = 1_000_000 / rate if rate else 0.0
        self._script = redis.register_script(_GCRA)

    def acquire(self, cost: int = 1) -> float:
        """0.0 if `cost` may go now (and it is recorded), else seconds to wait first.

        A refused call records nothing, so callers simply sleep and call again.
        """
        if cost < 0:
            raise ValueError(f"cost must be >= 0, got {cost}")
        if not self.rate or cost == 0:
            return 0.0
        args: list[str | int | float] = [repr(self._interval_us), self.burst, int(cost)]
        wait_us = int(self._script(keys=[self.key], args=args))
        return wait_us / 1_000_000
