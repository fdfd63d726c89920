"""Message state on Redis: the status guard and every outcome write.

Each outcome (sent, failed, expired, requeued, held) is one MULTI/EXEC that
writes the state, moves the campaign counters and acknowledges the stream
entry together, so a crash can never leave a message acknowledged without
its outcome, or with its outcome but still pending.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import redis

from .jobs import DEFERRED, EXPIRED, FAILED, SENDING, SENT, UNKNOWN, Job, state_of
from .keys import GROUP, Keys

_COUNTER = {SENT: "sent", FAILED: "failed", EXPIRED: "expired", UNKNOWN: "unknown"}


class Store:
    def __init__(self, r: redis.Redis, keys: Keys, *, ttl: int = 7 * 86_400):
        self.r = r
        self.keys = keys
        self.ttl = ttl

    # -- reads ---------------------------------------------------------------
    def states(self, jobs: Sequence[Job]) -> list[tuple[str, str]]:
        pipe = self.r.pipeline(transaction=False)
        for job in jobs:
            pipe.hget(self.keys.status(job.campaign), job.seq)
        return [state_of(raw) for raw in pipe.execute()]

    # -- writes --------------------------------------------------------------
    def mark_sending(self, jobs: Sequence[Job], now: float) -> None:
        """Written before the provider call: a crash after it makes the job ambiguous."""
        pipe = self.r.pipeline(transaction=True)
        fresh = Counter()
        for job in jobs:
            pipe.hset(self.keys.status(job.campaign), job.seq, f"{SENDING}:{now:.3f}")
            if not job.sending:
                fresh[job.campaign] += 1
                job.sending = True
        for cid, n in fresh.items():
            pipe.hincrby(self.keys.campaign(cid), "sending", n)
        pipe.execute()

    def finish(self, jobs: Sequence[Job], state: str, *, code: str = "") -> None:
        """Final outcome: state, counters and XACK+XDEL in one transaction."""
        if not jobs:
            return
        pipe = self.r.pipeline(transaction=True)
        value = f"{state}:{code}" if code else state
        counter = _COUNTER[state]
        per_campaign: Counter[str] = Counter()
        for job in jobs:
            pipe.hset(self.keys.status(job.campaign), job.seq, value)
            per_campaign[job.campaign] += 1
            if state == UNKNOWN:
                pipe.rpush(self.keys.held, job.id)
        for cid, n in per_campaign.items():
            pipe.hincrby(self.keys.campaign(cid), counter, n)
            if state == FAILED and code:
                pipe.hincrby(self.keys.campaign(cid), f"f:{code}", n)
            pipe.expire(self.keys.status(cid), self.ttl)
        self._leave(pipe, jobs)
        pipe.execute()

    def requeue(self, jobs: Sequence[Job], *, now: float, delay: float = 0.0) -> None:
        """Give jobs back: to the stream's tail now, or to the delayed set for later."""
        if not jobs:
            return
        pipe = self.r.pipeline(transaction=True)
        per_campaign: Counter[str] = Counter()
        for job in jobs:
            first = job.enqueued_at() or now
            again = Job(job.id, job.to, job.text, job.sender, job.options, job.expires_at,
                        first, job.high)
            if delay > 0:
                pipe.zadd(self.keys.delayed, {again.pack(): now + delay})
                pipe.hset(self.keys.status(job.campaign), job.seq, f"{DEFERRED}:{now + delay:.0f}")
                per_campaign[job.campaign] += 1
            else:
                pipe.xadd(self.keys.stream(job.sender, job.high), again.fields())
                pipe.hdel(self.keys.status(job.campaign), job.seq)
        for cid, n in per_campaign.items():
            pipe.hincrby(self.keys.campaign(cid), "deferred", n)
        self._leave(pipe, jobs)
        pipe.execute()

    def ack(self, jobs: Iterable[Job]) -> None:
        """Drop entries whose outcome was already recorded (a crash after EXEC)."""
        pipe = self.r.pipeline(transaction=True)
        self._leave(pipe, list(jobs))
        pipe.execute()

    def _leave(self, pipe: redis.client.Pipeline, jobs: Sequence[Job]) -> None:
        sending: Counter[str] = Counter()
        for job in jobs:
            if job.entry:
                stream = self.keys.stream(job.sender, job.high)
                pipe.xack(stream, GROUP, job.entry)
                pipe.xdel(stream, job.entry)
            if job.sending:
                sending[job.campaign] += 1
                job.sending = False
        for cid, n in sending.items():
            pipe.hincrby(self.keys.campaign(cid), "sending", -n)
