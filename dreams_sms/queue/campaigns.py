"""The campaign index: which campaigns exist, newest first.

A campaign hash is found by its id only, and a SCAN over every key would stall
a busy Redis, so the producer lists each campaign in one sorted set by the
time its hash was created (the enqueue script when it creates the hash,
`send_bulk` when an import starts). The set itself has no TTL and its members
follow their campaign hash: listed while it exists (no TTL while messages
wait, `status_ttl` after the last one settled). Readers skip members whose
hash is gone; `prune` forgets them, and the producer runs it once per import.
"""

from __future__ import annotations

from typing import cast

import redis

from dreams_sms.queue import scripts
from dreams_sms.queue.keys import Keys

# KEYS and ARGV: see queue/lua/prune_campaigns.lua.
_PRUNE = scripts.load("prune_campaigns")

#: Pages read past expired members before `recent` gives up: bounds one dashboard refresh.
_MAX_PAGES = 4


class CampaignIndex:
    def __init__(self, r: redis.Redis, keys: Keys):
        self.r = r
        self.keys = keys
        self._prune = r.register_script(_PRUNE)

    def add(self, cid: str, created: float) -> None:
        """List `cid` as created at `created` (again, when an import restarts it)."""
        self.r.zadd(self.keys.campaigns, {cid: created})

    def recent(self, limit: int) -> list[str]:
        """The newest `limit` campaigns whose hash still exists, newest first."""
        out: list[str] = []
        page = max(limit, 1) * 2
        for n in range(_MAX_PAGES):
            # Members only, decoded (decode_responses=True): str.
            ids = cast("list[str]", self.r.zrevrange(self.keys.campaigns, n * page,
                                                     (n + 1) * page - 1))
            if not ids:
                break
            pipe = self.r.pipeline(transaction=False)
            for cid in ids:
                pipe.exists(self.keys.campaign(cid))
            out += [cid for cid, there in zip(ids, pipe.execute(), strict=True) if there]
            if len(out) >= limit:
                break
        return out[:limit]

    def prune(self, before: float, limit: int = 500) -> int:
        """Forget up to `limit` campaigns listed before `before` whose hash expired."""
        ids = cast("list[str]", self.r.zrangebyscore(self.keys.campaigns, "-inf", before,
                                                     start=0, num=limit))
        if not ids:
            return 0
        keys = [self.keys.campaigns, *(self.keys.campaign(cid) for cid in ids)]
        return int(self._prune(keys=keys, args=ids))
