"""Who may send a job right now: one lease per message, taken by compare-and-set.

A job is sent only by the holder of its lease, and a lease is granted in one
Lua step, only when the job is free (or already this holder's). The lease
lives in a per-sender hash `<prefix>:lease:{sender}` (message id ->
`token|until_ms|t0`), in the same hash slot as the sender's streams, and is
removed by the very step that records the job's outcome.

What a lease means:

- held and renewed: a live worker is calling the provider with it (or about
  to); nobody else touches the job;
- held but expired: its holder went silent mid-call, so the provider may have
  accepted the job. A taker never resends such a job: it is reconciled or
  held for an operator ("unknown");
- absent: nobody is sending the job. A certain refusal (-114, -118, 5xx, a
  connect failure) releases the lease before the backoff sleep, so a crash
  then means a safe resend, not an operator's review.

One `take` does in a single round trip what a pass needs before its call:
pause check, the clock, the daily quota, taking over a dead consumer's
entries, reading (high priority first), and leasing at most one provider
call's worth of jobs.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

import redis

from dreams_sms.errors import NotReplicated
from dreams_sms.queue import scripts
from dreams_sms.queue.connect import Replicas, run_confirmed
from dreams_sms.queue.jobs import Job
from dreams_sms.queue.keys import GROUP, Keys, ensure_group

# Verdicts a take gives each job it returns (every one of them leased to the taker), as
# the first letter of a job's code in take.lua's reply.
SEND = "send"  # fresh: goes out in this call
UNKNOWN = "unknown"  # a silent holder's lease ran out: may have reached the provider
EXPIRED = "expired"  # past expires_at: never sent
CANCEL = "cancel"  # its campaign was cancelled: never sent
_SEND, _UNKNOWN, _EXPIRED = SEND[0], UNKNOWN[0], EXPIRED[0]

# The scripts (queue/lua/*.lua: KEYS, ARGV and replies in their headers).
_TAKE = scripts.load("take")
_RETAKE = scripts.load("retake")
_RENEW = scripts.load("renew")
_RELEASE = scripts.load("release")
_HAND_BACK = scripts.load("hand_back")


@dataclass(slots=True)
class Taken:
    """What one `take` got: a status, Redis' clock, and leased jobs by verdict."""

    status: str  # ok, empty, closed, paused, wait, clock
    now: float
    granted: int = 0  # quota units reserved for `send`
    claimed: int = 0  # entries taken over from silent consumers
    send: list[Job] = field(default_factory=list)
    unknown: list[tuple[Job, float]] = field(default_factory=list)
    expired: list[Job] = field(default_factory=list)
    cancel: list[Job] = field(default_factory=list)
    paused: str = ""
    confirmed: bool = True  # the leases reached the replicas required (always, without any)
    refused: list[str] = field(default_factory=list)  # folded outcomes not ours any more


@dataclass(slots=True)
class Outcome:
    """A final outcome a take writes before it reads (`Leases.take(settle=...)`):
    the last call's jobs, leased with `token`, each written only while still ours,
    exactly as `Store.finish` would (state, counters, XACK+XDEL, lease freed)."""

    token: str
    jobs: list[Job]
    value: str  # the state value (jobs.SENT)
    counter: str  # the campaign counter it moves (fields.SENT)
    ttl: int  # the status TTL (Store.ttl)


def _day_window(now: float, tz: ZoneInfo) -> tuple[float, float, float]:
    """(start of today, next midnight, midnight after that), local time."""
    day = datetime.fromtimestamp(now, tz).date()

    def midnight(d: object) -> float:
        return datetime.combine(d, dtime(0), tzinfo=tz).timestamp()  # type: ignore[arg-type]

    return midnight(day), midnight(day + timedelta(days=1)), midnight(day + timedelta(days=2))


class Leases:
    """The lease scripts for one consumer (a worker process)."""

    def __init__(self, r: redis.Redis, keys: Keys, consumer: str, *, tz: ZoneInfo,
                 lease_seconds: float, test_clock: bool = False,
                 confirm: Replicas | None = None):
        self.r = r
        self.keys = keys
        self.consumer = consumer
        self.tz = tz
        self.lease_ms = int(lease_seconds * 1000)
        self.test_clock = "1" if test_clock else "0"
        self._take = r.register_script(_TAKE)
        self._retake = r.register_script(_RETAKE)
        self._renew = r.register_script(_RENEW)
        self._release = r.register_script(_RELEASE)
        self._hand_back = r.register_script(_HAND_BACK)
        self._skew = 0.0  # Redis clock (plus test offset) minus ours
        self._groups: set[str] = set()
        # Replicas to WAIT for: a lease a failover could forget must not be sent on.
        self.confirm = confirm
        self._acks = 0
        self._need = 0

    @staticmethod
    def new_token() -> str:
        return secrets.token_hex(8)

    def take(self, sender: str, want: int, token: str, *, claim_ms: int = 0, fill: bool = False,
             object_format: bool = False, settle: Outcome | None = None) -> Taken:
        """Lease at most `want` jobs; first write `settle`, the last call's outcome
        (one round trip for both). `Taken.refused`: its jobs that were not ours."""
        for stream in self.keys.streams(sender):
            ensure_group(self.r, stream, self._groups)
        refused: list[str] = []
        for _ in range(3):
            reply = self._call_take(sender, want, token, claim_ms, fill, object_format, settle)
            if settle is not None:  # written by the first reply; never twice
                refused = list(reply[4])
                settle = None
            if reply[0] != "clock":
                break
            self._skew = float(reply[1]) - time.time()
        taken = self._taken(sender, reply)
        taken.refused = refused
        taken.confirmed = self._was_confirmed()
        return taken

    def _was_confirmed(self) -> bool:
        return self._acks >= self._need

    def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run a lease script; with replicas required, `WAIT` for them on the same
        connection in the same round trip (one pipeline), and note how many acked."""
        wait = self.confirm.wait_args() if self.confirm is not None else None
        if wait is None:
            self._acks = self._need = 0
            return script(keys=keys, args=args)
        self._need = wait[0]
        reply, self._acks = run_confirmed(self.r, script, keys, args, wait)
        return reply

    def _call_take(self, sender: str, want: int, token: str, claim_ms: int, fill: bool,
                   object_format: bool, settle: Outcome | None) -> list[Any]:
        est = time.time() + self._skew
        start, midnight, end = _day_window(est, self.tz)
        k = self.keys
        quota_a, quota_b = k.quota(sender, start, self.tz), k.quota(sender, midnight, self.tz)
        closed_a, closed_b = k.closed(sender, start, self.tz), k.closed(sender, midnight, self.tz)
        keys = [k.pauses, k.sender_paused(sender), k.clock, *k.streams(sender),
                k.lease(sender), quota_a, closed_a, quota_b, closed_b, k.limits, k.limits_seed,
                k.cancelled]
        args: list[str | int | float] = [
            GROUP, self.consumer, token, want, self.lease_ms, repr(midnight), repr(start),
            repr(end), int(midnight) + 3600, int(end) + 3600, sender, claim_ms,
            int(fill), int(object_format), self.test_clock]
        bare = len(args)
        self._fold(settle, keys, args)
        reply: list[Any]  # the script's reply (queue/lua/take.lua)
        try:
            reply = self._run(self._take, keys, args)
        except redis.ResponseError as exc:  # the group vanished (Redis lost its data)
            if "NOGROUP" not in str(exc):
                raise
            self._groups.clear()
            for stream in self.keys.streams(sender):
                ensure_group(self.r, stream, self._groups)
            # The outcome part runs first and cannot fail on a missing group (XPENDING
            # under pcall, XACK answers 0): it was written, so it is not sent again.
            del args[bare:], keys[13:]
            self._fold(None, keys, args)
            reply = self._run(self._take, keys, args)
        return reply

    def _fold(self, settle: Outcome | None, keys: list[str], args: list[Any]) -> None:
        """take.lua's ARGV 16- and KEYS 14-: the outcome written before the take."""
        if settle is None or not settle.jobs:
            args += ["", "", "", 0]
            return
        args += [settle.token, settle.value, settle.counter, settle.ttl]
        campaigns: dict[str, int] = {}
        run: list[str] = []
        at = (False, "")  # the run's (high, campaign): a new run where it changes
        for job in settle.jobs:
            mid = job.id
            cut = mid.rindex("-")
            cid = mid[:cut]
            if (job.high, cid) != at:
                if run:
                    args += [len(run) // 3, "1" if at[0] else "0", campaigns[at[1]], *run]
                    run = []
                at = (job.high, cid)
                if cid not in campaigns:
                    campaigns[cid] = len(campaigns) + 1
                    keys += [self.keys.status(cid), self.keys.campaign(cid)]
            run += (mid, mid[cut + 1:], job.entry)
        args += [len(run) // 3, "1" if at[0] else "0", campaigns[at[1]], *run]

    def _taken(self, sender: str, reply: list[Any]) -> Taken:
        status, now, granted, claimed = reply[0], float(reply[1]), int(reply[2]), int(reply[3])
        self._skew = now - time.time()
        out = Taken(status, now, granted, claimed)
        if status == "paused":
            out.paused = reply[5]
            return out
        send = out.send
        for k in range(5, len(reply), 9):  # 9 values a job: code, entry, i t m o x a, t0
            code, entry = reply[k], reply[k + 1]
            job = Job.from_values(reply[k + 2:k + 8], sender=sender, entry=entry,
                                  high=code[1] == "1")
            verdict = code[0]
            if verdict == _SEND:
                send.append(job)
            elif verdict == _UNKNOWN:
                out.unknown.append((job, float(reply[k + 8] or now)))
            elif verdict == _EXPIRED:
                out.expired.append(job)
            else:
                out.cancel.append(job)
        return out

    def _job_args(self, jobs: Sequence[Job]) -> list[str]:
        args: list[str] = []
        for j in jobs:
            args += [j.id, "1" if j.high else "0", j.entry]
        return args

    def retake(self, sender: str, token: str, jobs: Sequence[Job]) -> tuple[list[Job], float]:
        """Lease `jobs` again right before a call: those still ours, and their clock.

        With replicas required and not confirmed, none: the leases are freed again."""
        if not jobs:
            return [], time.time() + self._skew
        reply = self._run(self._retake,
                          [self.keys.lease(sender), *self.keys.streams(sender), self.keys.clock],
                          [GROUP, self.consumer, token, self.lease_ms, self.test_clock,
                           *self._job_args(jobs)])
        now = float(reply[0])
        self._skew = now - time.time()
        mine = set(reply[1:])
        out = [j for j in jobs if j.id in mine]
        if out and not self._was_confirmed():
            self.release(sender, token, out)
            raise NotReplicated(f"{len(out)} leases of {sender}", self._acks, self._need)
        return out, now

    def renew(self, sender: str, token: str, jobs: Sequence[Job]) -> int:
        if not jobs:
            return 0
        return int(self._renew(keys=[self.keys.lease(sender), *self.keys.streams(sender),
                                     self.keys.clock],
                               args=[GROUP, self.consumer, token, self.lease_ms,
                                     self.test_clock, *self._job_args(jobs)]))

    def release(self, sender: str, token: str, jobs: Sequence[Job]) -> int:
        """Free our leases after a certain refusal: the jobs were not sent."""
        if not jobs:
            return 0
        return int(self._release(keys=[self.keys.lease(sender)],
                                 args=[token, *[j.id for j in jobs]]))

    def hand_back(self, sender: str) -> int:
        """Unleased entries we still hold go back to their stream (a chain's end)."""
        return int(self._hand_back(keys=[*self.keys.streams(sender), self.keys.lease(sender)],
                                   args=[GROUP, self.consumer]))

    def now(self) -> float:
        """Our best estimate of Redis' clock (as of the last script reply)."""
        return time.time() + self._skew
