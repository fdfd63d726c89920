"""Message state on Redis: every outcome write, each one atomic and owned.

An outcome (sent, failed, expired, cancelled, held, requeued, deferred) is one
Lua step that checks the job is still ours (its lease carries our token, or it
is free and its entry pending with us), then writes the state, moves the
campaign counters, acknowledges and deletes the stream entry and frees the
lease together. A worker that lost a job to another can therefore never
record, requeue or resend it: its write is refused and it moves on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import redis

from dreams_sms.queue import fields as cf
from dreams_sms.queue import scripts
from dreams_sms.queue.jobs import CANCELLED, EXPIRED, FAILED, SENT, UNKNOWN, Job
from dreams_sms.queue.keys import GROUP, Keys

log = logging.getLogger("dreams_sms.queue.store")

# The campaign counter each final state moves.
_COUNTER = {SENT: cf.SENT, FAILED: cf.FAILED, EXPIRED: cf.EXPIRED, UNKNOWN: cf.UNKNOWN,
            CANCELLED: cf.CANCELLED}

# The scripts (queue/lua/settle.lua, settle_held.lua: KEYS and ARGV in their headers).
_SETTLE = scripts.load("settle")
_SETTLE_HELD = scripts.load("settle_held")


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose writes these are: the consumer (its pending entries) and a lease token."""

    consumer: str
    token: str


class Store:
    def __init__(self, r: redis.Redis, keys: Keys, *, ttl: int = 7 * 86_400):
        self.r = r
        self.keys = keys
        self.ttl = ttl
        self._settle = r.register_script(_SETTLE)
        self._settle_held = r.register_script(_SETTLE_HELD)

    # -- outcome writes (owned) ------------------------------------------------------
    def finish(self, jobs: Sequence[Job], state: str, owner: Owner, *, code: str = ""
               ) -> list[str]:
        """Final outcome. Returns the ids refused because they are no longer ours."""
        counter = _COUNTER[state]
        failure = cf.failure(code) if state == FAILED and code else ""
        value = f"{state}:{code}" if code else state
        return self._write(jobs, owner, "final", value, counter, failure)

    def requeue(self, jobs: Sequence[Job], owner: Owner, *, now: float, delay: float = 0.0
                ) -> list[str]:
        """Give jobs back: to the stream's tail now, or to the delayed set for later."""
        if delay > 0:
            return self._write(jobs, owner, "defer", "", "", "", due=now + delay, now=now)
        return self._write(jobs, owner, "requeue", "", "", "", now=now)

    def _write(self, jobs: Sequence[Job], owner: Owner, mode: str, value: str, counter: str,
               failure: str, *, due: float = 0.0, now: float = 0.0) -> list[str]:
        refused: list[str] = []
        by_sender: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            by_sender[job.sender].append(job)
        for sender, group in by_sender.items():
            campaigns: dict[str, int] = {}
            keys = [self.keys.lease(sender), *self.keys.streams(sender), self.keys.held,
                    self.keys.delayed, self.keys.senders]
            args: list[str | int | float] = [GROUP, owner.consumer, owner.token, mode, value,
                                             counter, failure, self.ttl, f"{due:.3f}"]
            for job in group:
                cid = job.campaign
                if cid not in campaigns:
                    campaigns[cid] = len(campaigns) + 1
                    keys += [self.keys.status(cid), self.keys.campaign(cid)]
                if mode != "final" and job.first_at is None:
                    job.first_at = job.enqueued_at() or now
                whole = job.pack() if mode != "final" or value == UNKNOWN else ""
                args += [job.id, "1" if job.high else "0", job.entry, campaigns[cid], job.seq,
                         whole]
            refused += self._settle(keys=keys, args=args)
        if refused:
            log.warning("%d jobs were taken over by another worker; left to it", len(refused))
        return refused

    # -- held jobs (unknown outcome) -------------------------------------------------
    def held(self, limit: int = 1000) -> list[Job]:
        """Jobs whose outcome is unknown, waiting for an operator."""
        out = []
        for _, raw in zip(range(limit), self.r.hscan_iter(self.keys.held, count=500),
                          strict=False):
            out.append(Job.unpack(raw[1]))
        return out

    def held_count(self) -> int:
        """How many jobs wait for an operator's verdict (`dreams-sms held`)."""
        return self.r.hlen(self.keys.held)

    def settle_held(self, ids: Sequence[str], *, delivered: bool, now: float) -> int:
        """An operator's verdict on held jobs: mark them sent, or send them again.

        Each id is settled once, whoever else runs the same command at the same time.
        """
        # The client decodes replies (decode_responses=True): str, not bytes.
        raws = cast("list[str | None]", self.r.hmget(self.keys.held, list(ids))) if ids else []
        jobs = [Job.unpack(raw) for raw in raws if raw]
        if not jobs:
            return 0
        keys = [self.keys.held, self.keys.senders]
        args: list[str | int | float] = ["delivered" if delivered else "resend"]
        for job in jobs:
            job.first_at = job.first_at or now
            keys += [self.keys.stream(job.sender, job.high), self.keys.status(job.campaign),
                     self.keys.campaign(job.campaign)]
            args += [job.id, job.seq, job.pack()]
        return int(self._settle_held(keys=keys, args=args))
