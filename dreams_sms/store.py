"""Message state on Redis: the status guard and every outcome write.

Each outcome (sent, failed, expired, requeued, held) is one MULTI/EXEC that
writes the state, moves the campaign counters and acknowledges the stream
entry together, so a crash can never leave a message acknowledged without
its outcome, or with its outcome but still pending. Commands are grouped per
campaign and per stream: a batch of 100 costs a handful of commands, not 500.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import redis

from .jobs import CANCELLED, DEFERRED, EXPIRED, FAILED, SENDING, SENT, UNKNOWN, Job, state_of
from .keys import GROUP, Keys

#: The detail `states` gives a job whose campaign was cancelled but that is not settled yet.
TO_CANCEL = "pending"

_COUNTER = {SENT: "sent", FAILED: "failed", EXPIRED: "expired", UNKNOWN: "unknown",
            CANCELLED: "cancelled"}


def _by_campaign(jobs: Iterable[Job]) -> dict[str, list[Job]]:
    out: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        out[job.campaign].append(job)
    return out


class Store:
    def __init__(self, r: redis.Redis, keys: Keys, *, ttl: int = 7 * 86_400):
        self.r = r
        self.keys = keys
        self.ttl = ttl

    # -- reads ---------------------------------------------------------------
    def states(self, jobs: Sequence[Job]) -> list[tuple[str, str]]:
        """(state, detail) per job, one HMGET per campaign; a job of a cancelled
        campaign that is not settled yet reads as cancelled."""
        groups = _by_campaign(jobs)
        pipe = self.r.pipeline(transaction=False)
        for cid, group in groups.items():
            pipe.hmget(self.keys.status(cid), [j.seq for j in group])
        pipe.smismember(self.keys.cancelled, list(groups))
        *replies, cancelled = pipe.execute()
        found: dict[int, tuple[str, str]] = {}
        for group, values, gone in zip(groups.values(), replies, cancelled, strict=True):
            for job, raw in zip(group, values, strict=True):
                state = state_of(raw)
                if gone and state[0] not in (SENT, FAILED, EXPIRED, UNKNOWN, SENDING, CANCELLED):
                    state = (CANCELLED, TO_CANCEL)
                found[id(job)] = state
        return [found[id(j)] for j in jobs]

    # -- writes --------------------------------------------------------------
    def mark_sending(self, jobs: Sequence[Job], now: float) -> None:
        """Written before the provider call: a crash after it makes the job ambiguous."""
        pipe = self.r.pipeline(transaction=True)
        value = f"{SENDING}:{now:.3f}"
        for cid, group in _by_campaign(jobs).items():
            pipe.hset(self.keys.status(cid), mapping={j.seq: value for j in group})
            fresh = sum(1 for j in group if not j.sending)
            if fresh:
                pipe.hincrby(self.keys.campaign(cid), "sending", fresh)
        for job in jobs:
            job.sending = True
        pipe.execute()

    def finish(self, jobs: Sequence[Job], state: str, *, code: str = "") -> None:
        """Final outcome: state, counters and XACK+XDEL in one transaction."""
        if not jobs:
            return
        pipe = self.r.pipeline(transaction=True)
        value = f"{state}:{code}" if code else state
        counter = _COUNTER[state]
        for cid, group in _by_campaign(jobs).items():
            pipe.hset(self.keys.status(cid), mapping={j.seq: value for j in group})
            pipe.hincrby(self.keys.campaign(cid), counter, len(group))
            if state == FAILED and code:
                pipe.hincrby(self.keys.campaign(cid), f"f:{code}", len(group))
            pipe.expire(self.keys.status(cid), self.ttl)
        if state == UNKNOWN:  # kept whole, so an operator can resend or settle them
            pipe.hset(self.keys.held, mapping={j.id: j.pack() for j in jobs})
        self._leave(pipe, jobs)
        pipe.execute()

    def requeue(self, jobs: Sequence[Job], *, now: float, delay: float = 0.0) -> None:
        """Give jobs back: to the stream's tail now, or to the delayed set for later."""
        if not jobs:
            return
        pipe = self.r.pipeline(transaction=True)
        for cid, group in _by_campaign(jobs).items():
            if delay > 0:
                pipe.hset(self.keys.status(cid),
                          mapping={j.seq: f"{DEFERRED}:{now + delay:.0f}" for j in group})
                pipe.hincrby(self.keys.campaign(cid), "deferred", len(group))
            else:
                pipe.hdel(self.keys.status(cid), *[j.seq for j in group])
        for job in jobs:
            again = Job(job.id, job.to, job.text, job.sender, job.options, job.expires_at,
                        job.enqueued_at() or now, job.high)
            if delay > 0:
                pipe.zadd(self.keys.delayed, {again.pack(): now + delay})
            else:
                pipe.xadd(self.keys.stream(job.sender, job.high), again.fields())
        self._leave(pipe, jobs)
        pipe.execute()

    # -- held jobs (unknown outcome) -------------------------------------------------
    def held(self, limit: int = 1000) -> list[Job]:
        """Jobs whose outcome is unknown, waiting for an operator."""
        out = []
        for _, raw in zip(range(limit), self.r.hscan_iter(self.keys.held, count=500),
                          strict=False):
            out.append(Job.unpack(raw[1]))
        return out

    def settle_held(self, ids: Sequence[str], *, delivered: bool, now: float) -> int:
        """An operator's verdict on held jobs: mark them sent, or send them again."""
        raws = self.r.hmget(self.keys.held, list(ids))
        jobs = [Job.unpack(raw) for raw in raws if raw]
        if not jobs:
            return 0
        pipe = self.r.pipeline(transaction=True)
        for cid, group in _by_campaign(jobs).items():
            pipe.hincrby(self.keys.campaign(cid), "unknown", -len(group))
            if delivered:
                pipe.hset(self.keys.status(cid), mapping={j.seq: SENT for j in group})
                pipe.hincrby(self.keys.campaign(cid), "sent", len(group))
            else:
                pipe.hdel(self.keys.status(cid), *[j.seq for j in group])
        if not delivered:
            for job in jobs:
                job.first_at = job.first_at or now
                pipe.xadd(self.keys.stream(job.sender, job.high), job.fields())
                pipe.sadd(self.keys.senders, job.sender)
        pipe.hdel(self.keys.held, *[j.id for j in jobs])
        pipe.execute()
        return len(jobs)

    def ack(self, jobs: Iterable[Job]) -> None:
        """Drop entries whose outcome was already recorded (a crash after EXEC)."""
        jobs = list(jobs)
        if not jobs:
            return
        pipe = self.r.pipeline(transaction=True)
        self._leave(pipe, jobs)
        pipe.execute()

    def _leave(self, pipe: redis.client.Pipeline, jobs: Sequence[Job]) -> None:
        entries: dict[str, list[str]] = defaultdict(list)
        sending: Counter[str] = Counter()
        for job in jobs:
            if job.entry:
                entries[self.keys.stream(job.sender, job.high)].append(job.entry)
            if job.sending:
                sending[job.campaign] += 1
                job.sending = False
        for stream, ids in entries.items():
            pipe.xack(stream, GROUP, *ids)
            pipe.xdel(stream, *ids)
        for cid, n in sending.items():
            pipe.hincrby(self.keys.campaign(cid), "sending", -n)
