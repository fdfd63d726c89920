"""A daily per-sender limit shared by every worker on every machine.

The provider caps each sender name per local calendar day (-123 "exceeds daily
sending limit"), so the count lives in Redis under a date-stamped key that
expires after the next local midnight. Every check-and-count is one Lua script,
so concurrent workers can never grant more than the limit between them.

`now` is always passed in (the worker uses Redis TIME plus a test-clock offset),
which keeps midnight behaviour deterministic and independent of worker clocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import redis as redis_lib
from redis.typing import EncodableT, FieldT

from dreams_sms.queue import scripts
from dreams_sms.queue.keys import Keys

#: Keys outlive their day by this much, so a late refund still finds its counter.
GRACE_SECONDS = 3600

# The scripts (queue/lua/reserve.lua, refund.lua, close.lua: KEYS and ARGV in their
# headers); reserve and close share the `expire_at` prelude.
_RESERVE = scripts.load("reserve")
_REFUND = scripts.load("refund")
_CLOSE = scripts.load("close")


#: Stored as a daily limit: this sender has none (0 is a limit: it stops the sender).
NO_LIMIT = "none"


def _config_value(n: int) -> str:
    """Configuration says 0 for "no limit" (DREAMS_DAILY_LIMIT's default)."""
    return str(int(n)) if n else NO_LIMIT


def local_day(ts: float, tz: ZoneInfo) -> str:
    """The local calendar day of `ts` as YYYYMMDD: the provider's day, not UTC's."""
    return datetime.fromtimestamp(ts, tz).strftime("%Y%m%d")


def next_midnight(ts: float, tz: ZoneInfo) -> float:
    """Epoch of the first instant of the local day after `ts`.

    zoneinfo resolves DST: a day may last 23 or 25 hours, and where midnight
    itself is skipped (a 00:00 spring-forward) the result is the transition,
    the first instant that carries the new date.
    """
    day = datetime.fromtimestamp(ts, tz).date()
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).timestamp()


def _check_sender(sender: str) -> str:
    # Braces would break the Redis Cluster hash tag that keeps a sender's keys together.
    if not sender or "{" in sender or "}" in sender:
        raise ValueError(f"invalid sender name for a quota key: {sender!r}")
    return sender


class DailyQuota:
    """Per-sender daily counter with runtime overrides and a provider-closed flag."""

    def __init__(
        self,
        redis: redis_lib.Redis,
        *,
        prefix: str,
        tz: ZoneInfo,
        default_limit: Callable[[str], int] | None = None,
    ):
        self.redis = redis
        self.prefix = prefix
        self.tz = tz
        self.keys = Keys(prefix)
        #: Used only until a worker has seeded the fleet's table into Redis.
        self.default_limit = default_limit or (lambda _sender: 0)
        self.limits_key = self.keys.limits
        self._reserve = redis.register_script(_RESERVE)
        self._refund = redis.register_script(_REFUND)
        self._close = redis.register_script(_CLOSE)

    # -- keys ---------------------------------------------------------------

    def counter_key(self, sender: str, now: float) -> str:
        return self.keys.quota(_check_sender(sender), now, self.tz)

    def closed_key(self, sender: str, now: float) -> str:
        return self.keys.closed(_check_sender(sender), now, self.tz)

    def _expire_at(self, now: float) -> int:
        return int(next_midnight(now, self.tz)) + GRACE_SECONDS

    # -- limits -------------------------------------------------------------

    def seed(self, default: int, per_sender: Mapping[str, int]) -> bool:
        """Write this process's configured limits as the fleet's table.

        Every worker and CLI reads limits from Redis, so two workers started
        with different environments still enforce one limit per sender (the
        last one started wins, and says so). Returns True when it changed.
        """
        # Typed as redis-py's `mapping` parameter (a Mapping, invariant in its keys).
        wanted: dict[FieldT, EncodableT] = {
            "*": _config_value(default), **{s: _config_value(n) for s, n in per_sender.items()}}
        for s in per_sender:
            _check_sender(s)
        if self.redis.hgetall(self.keys.limits_seed) == wanted:
            return False
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.limits_seed)
        pipe.hset(self.keys.limits_seed, mapping=wanted)
        pipe.execute()
        return True

    def _resolve(self, sender: str, override: object, seeded: object,
                 fallback: object) -> int | None:
        for raw in (override, seeded, fallback):
            if raw is not None:
                text = raw.decode() if isinstance(raw, bytes) else str(raw)
                return None if text == NO_LIMIT else int(text)
        n = int(self.default_limit(sender))
        return n or None

    def limit(self, sender: str) -> int | None:
        """Today's cap (0 closes the sender), or None for no limit: an operator's
        override, else the configured table every worker seeded."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(self.limits_key, _check_sender(sender))
        pipe.hmget(self.keys.limits_seed, [sender, "*"])
        override, (seeded, fallback) = pipe.execute()
        n = self._resolve(sender, override, seeded, fallback)
        if n is not None and n < 0:
            raise ValueError(f"negative daily limit {n} for sender {sender!r}")
        return n

    def set_limit(self, sender: str, n: int | str | None) -> None:
        """Override the cap for every worker at once: a number (0 stops the sender
        for the day), "none" for no limit, or None to go back to the configured one."""
        _check_sender(sender)
        if n is None:
            self.redis.hdel(self.limits_key, sender)
            return
        if n == NO_LIMIT:
            self.redis.hset(self.limits_key, sender, NO_LIMIT)
            return
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"a daily limit is a whole number >= 0 or 'none', not {n!r}")
        self.redis.hset(self.limits_key, sender, n)

    # -- counting -----------------------------------------------------------

    def reserve(self, sender: str, n: int, now: float) -> int:
        """Grant up to `n` sends from today's allowance and count them, atomically.

        Returns min(n, limit - used), or 0 when the sender is closed for the day.
        With limit 0 everything is granted but still counted, so `used()` stays true.
        The limit is read before the script because the overrides hash lives in
        another Cluster slot; a concurrent `set_limit` applies from the next call.
        """
        if n < 0:
            raise ValueError(f"cannot reserve a negative amount: {n}")
        if n == 0:
            return 0
        keys = [self.counter_key(sender, now), self.closed_key(sender, now)]
        limit = self.limit(sender)
        args = [self._expire_at(now), -1 if limit is None else limit, int(n)]
        return int(self._reserve(keys=keys, args=args))

    def refund(self, sender: str, n: int, now: float) -> int:
        """Give back unused grants; never drops below 0. Returns the amount taken off.

        Pass the `now` of the matching `reserve`, so a refund made just after
        midnight goes back to the day it was taken from, not into the new day.
        """
        if n < 0:
            raise ValueError(f"cannot refund a negative amount: {n}")
        if n == 0:
            return 0
        return int(self._refund(keys=[self.counter_key(sender, now)], args=[int(n)]))

    def close_for_today(self, sender: str, now: float) -> None:
        """The provider said -123: stop until the next local midnight, whatever our count says."""
        self._close(keys=[self.closed_key(sender, now)], args=[self._expire_at(now)])

    def is_closed(self, sender: str, now: float) -> bool:
        """Closed by the provider, or a finite limit already used up."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(self.closed_key(sender, now))
        pipe.get(self.counter_key(sender, now))
        closed, used = pipe.execute()
        if closed:
            return True
        limit = self.limit(sender)
        return limit is not None and int(used or 0) >= limit

    def used(self, sender: str, now: float) -> int:
        """Sends counted today (granted minus refunded)."""
        return int(self.redis.get(self.counter_key(sender, now)) or 0)

    def usage(self, senders: Iterable[str], now: float) -> dict[str, tuple[int, int | None]]:
        """(used, limit) per sender for a status table, in two round trips."""
        names = list(senders)
        if not names:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for s in names:
            pipe.get(self.counter_key(s, now))
        counts = pipe.execute()
        overrides = self.redis.hmget(self.limits_key, names)
        seeded = self.redis.hmget(self.keys.limits_seed, [*names, "*"])
        out: dict[str, tuple[int, int | None]] = {}
        for s, used, override, seed in zip(names, counts, overrides, seeded, strict=False):
            out[s] = (int(used or 0), self._resolve(s, override, seed, seeded[-1]))
        return out

    def reopens_at(self, now: float) -> float:
        """When today's counters and closed flags stop applying: the next local midnight."""
        return next_midnight(now, self.tz)
