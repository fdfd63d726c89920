"""Per-key request rate limits, kept in Redis so they hold across replicas.

The same GCRA script as the workers' per-second cap (`queue/rate.py`), one
key per API key (`dreams:apirate:<id>`): a replica behind the proxy cannot
grant a client more than its share, however the proxy spreads the requests,
and Redis' clock is the only one that counts.
"""

from __future__ import annotations

import redis

from dreams_sms.api.errors import RateLimited
from dreams_sms.queue.keys import Keys
from dreams_sms.queue.rate import Gcra


class RateLimits:
    """`rate` requests per second per key, `burst` at once; rate 0 is no limit."""

    def __init__(self, r: redis.Redis, keys: Keys, *, rate: float, burst: int):
        self.r = r
        self.keys = keys
        self.rate = rate
        self.burst = burst
        self._limiters: dict[str, Gcra] = {}

    def check(self, key_id: str) -> None:
        """Count one request of `key_id`, or raise `RateLimited` with the wait."""
        if not self.rate:
            return
        limiter = self._limiters.get(key_id)
        if limiter is None:
            limiter = Gcra(self.r, self.keys.api_rate(key_id), rate=self.rate, burst=self.burst)
            if len(self._limiters) < 10_000:  # keys are few; a bound all the same
                self._limiters[key_id] = limiter
        wait = limiter.acquire()
        if wait > 0:
            raise RateLimited(wait)
