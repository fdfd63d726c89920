"""Refusing a Redis that may evict our data.

Every guarantee here rests on keys that must not vanish: the streams (the
queue itself), the leases, today's quota counters, the statuses and held
jobs. Under any `maxmemory-policy` but `noeviction` Redis deletes keys when
memory runs short: a sender's stream, or a quota counter (the daily limit
granted again). So workers, beat and producers refuse such a Redis at start.
The policy is read from `INFO memory`, which managed services allow even where
CONFIG is disabled.
"""

from __future__ import annotations

import logging

import redis

from dreams_sms.errors import ConfigError

log = logging.getLogger("dreams_sms")

SAFE = "noeviction"


def check_eviction(r: redis.Redis, *, allow: bool = False) -> str | None:
    """The server's policy; raises ConfigError unless it is `noeviction` or `allow`."""
    try:
        info = r.info("memory")
    except redis.ResponseError as exc:  # INFO not permitted for this user: say so, go on
        log.warning("cannot read Redis' maxmemory-policy (%s); make sure it is noeviction", exc)
        return None
    policy = str(info.get("maxmemory_policy", SAFE))
    if policy == SAFE:
        return policy
    if allow:
        log.warning("Redis maxmemory-policy is %s: keys may be evicted under memory pressure, "
                    "and with them queued messages or today's quota (allowed by "
                    "DREAMS_ALLOW_EVICTION)", policy)
        return policy
    raise ConfigError(
        f"Redis maxmemory-policy is {policy}: under memory pressure it would delete queued "
        "messages, leases and quota counters; set it to noeviction (CONFIG SET "
        "maxmemory-policy noeviction, or your provider's parameter), or accept the risk with "
        "DREAMS_ALLOW_EVICTION=1")
