"""Jobs that wait: scheduled sends (`send_at`) and retries after a delay.

They sit in one sorted set scored by due time; beat moves the due ones back
into their sender's stream. Nothing is parked in Celery with a long countdown
(on Redis an ETA past the visibility timeout runs twice).

Promotion reads the due members here, then moves them one sender at a time
with a script that is given every key it touches (that sender's streams, the
delayed set, the senders set, the campaigns' hashes): a script that built
stream names from the members it read could not declare its keys.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import cast

import redis

from dreams_sms.queue import scripts
from dreams_sms.queue.jobs import split_id
from dreams_sms.queue.keys import Keys

# KEYS and ARGV: see queue/lua/promote.lua.
_PROMOTE = scripts.load("promote")

#: Jobs moved per script call: keeps each step (and its pause of Redis) short.
_CHUNK = 500


@dataclass(slots=True)
class _Batch:
    """One sender's due jobs, as the promote script's KEYS and ARGV."""

    campaigns: dict[str, int] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)


class Delayed:
    def __init__(self, r: redis.Redis, keys: Keys):
        self.r = r
        self.keys = keys
        self._promote = r.register_script(_PROMOTE)

    def promote(self, now: float, limit: int = 5000) -> int:
        """Move due jobs into their streams; returns how many moved.

        Each job moves in one step that removes it from the delayed set and adds
        it to its stream; one another beat removed first is left alone.
        """
        # Members only (no scores), decoded (decode_responses=True): str.
        due = cast("list[str]", self.r.zrangebyscore(self.keys.delayed, "-inf", now,
                                                     start=0, num=limit))
        batches: dict[str, list[_Batch]] = defaultdict(list)
        for raw in due:
            d = json.loads(raw)
            sender = d["s"]
            chunks = batches[sender]
            if not chunks or len(chunks[-1].args) >= 4 * _CHUNK:
                chunks.append(_Batch())
            batch = chunks[-1]
            try:
                cid, seq = split_id(d["i"])
            except ValueError:  # not a campaign's message: nothing to count
                index, seq = 0, ""
            else:
                index = batch.campaigns.setdefault(cid, len(batch.campaigns) + 1)
            batch.args += [raw, "1" if d.get("h") == "1" else "0", str(index), seq]
        moved = 0
        for sender, chunks in batches.items():
            for batch in chunks:
                keys = [self.keys.delayed, self.keys.senders, *self.keys.streams(sender)]
                for cid in batch.campaigns:
                    keys += [self.keys.status(cid), self.keys.campaign(cid)]
                moved += int(self._promote(keys=keys, args=[sender, *batch.args]))
        return moved

    def size(self) -> int:
        return self.r.zcard(self.keys.delayed)

    def by_sender(self, limit: int = 10_000) -> tuple[dict[str, int], bool]:
        """Waiting jobs per sender (retries, scheduled sends), and whether all were
        counted: only the first `limit` by due time are read, for a status page."""
        counts: dict[str, int] = defaultdict(int)
        raws = cast("list[str]", self.r.zrange(self.keys.delayed, 0, limit - 1))  # decoded
        for raw in raws:
            counts[json.loads(raw).get("s", "")] += 1
        return dict(counts), len(raws) < limit or self.size() <= limit
