"""Draining one sender's streams into provider calls: the worker's logic.

Plain code with its I/O passed in, so it runs the same under a Celery task,
a test or a benchmark. One `drain_once` makes at most one provider call (and
its retries, or the calls that isolate refused numbers):

    take (one Lua step: paused? quota, takeover, read, lease one call's worth)
    -> settle what must not be sent (expired, cancelled, stale leases)
    -> before each attempt: lease again, check expiry and the day
    -> call -> record the outcome, owned, in one step.

Ownership rules (see `lease`): only the lease holder calls the provider; a
certain refusal frees the lease before the backoff sleep; a job whose holder
went silent mid-call is never resent, only reconciled or held.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import redis

from dreams_sms.config import Settings
from dreams_sms.errors import NotReplicated, OutcomeUnknown, ProviderError, TransportError
from dreams_sms.provider.client import multi_slices
from dreams_sms.provider.retry import requeue_delay, retrying
from dreams_sms.queue import fields as cf
from dreams_sms.queue.connect import replicas
from dreams_sms.queue.control import Control
from dreams_sms.queue.heartbeat import Heartbeat
from dreams_sms.queue.jobs import CANCELLED, EXPIRED, FAILED, SENT, UNKNOWN, Job
from dreams_sms.queue.keys import Keys
from dreams_sms.queue.lease import Leases, Outcome, Taken
from dreams_sms.queue.quota import DailyQuota, local_day
from dreams_sms.queue.store import Owner, Store
from dreams_sms.worker.events import Events
from dreams_sms.worker.policy import Action, Decision, decide

log = logging.getLogger("dreams_sms.worker.drain")

#: Calls in a row without a readable answer before this worker pauses sending:
#: a provider that answers nothing we can read would otherwise fill the held list.
UNKNOWN_STREAK = 5


class Provider(Protocol):
    """What the drain calls: `DreamsClient` in a worker, fakes in tests.

    `send` takes a job's sendsms options as keywords (form values, as
    `validate.check_options` made them). Results are read duck-typed: a
    `confirmed` sequence aligned with the jobs, else all are taken as sent.
    """

    def ready(self) -> None:
        """Have what a call needs (an OAuth token) before jobs are leased for it."""

    def send_multi(self, sender: str, items: Sequence[tuple[str, str]]) -> object: ...

    def send(
        self,
        to: str,
        message: str,
        sender: str,
        *,
        is_calander: int | str | None = ...,
        calander_date: str | None = ...,
        calander_time: str | None = ...,
        reminder: int | str | None = ...,
        reminder_text: str | None = ...,
        location_url: str | None = ...,
    ) -> object: ...


class RateLimiter(Protocol):
    """The optional per-second cap (`queue.rate.Gcra`)."""

    def acquire(self, cost: int) -> float:
        """0.0 if `cost` units may go now (and they are counted), else seconds to wait."""


class Reconciler(Protocol):
    def accepted(self, sender: str, jobs: Sequence[Job], since: float) -> list[bool] | None:
        """Per job, whether the provider accepted it since `since`; None if it cannot tell."""


@dataclass
class Report:
    sent: int = 0
    failed: int = 0
    expired: int = 0
    requeued: int = 0
    deferred: int = 0
    held: int = 0
    calls: int = 0
    isolation_calls: int = 0
    stop: str | None = None  # "empty", "paused" or "closed" when the chain should end
    codes: Counter[str] = field(default_factory=Counter)  # errors met: failures and retries

    def add(self, other: Report) -> None:
        for name in ("sent", "failed", "expired", "requeued", "deferred", "held", "calls",
                     "isolation_calls"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.codes.update(other.codes)

    def summary(self, sender: str) -> dict[str, object]:
        """What a drain task did, for Flower's task list: only what happened."""
        out: dict[str, object] = {"sender": sender}
        for name in ("sent", "calls", "failed", "deferred", "held", "expired", "requeued"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.codes:
            out["codes"] = dict(self.codes)
        if self.stop:
            out["stop"] = self.stop
        return out


@dataclass
class _CallState:
    """What one call's attempts share: the jobs still in it, and the last answer."""

    jobs: list[Job]
    leased: bool  # the jobs' leases are fresh: the first attempt need not take them again
    result: object = None


@dataclass
class _Unsent:
    """Jobs a folded pass sent whose outcome is not written yet: still leased (the
    heartbeat keeps the leases), written by the sender's next take or `flush_outcomes`."""

    owner: Owner
    jobs: list[Job]


class _Budget:
    """The quota units one call group holds, on the local day they were taken."""

    def __init__(self, quota: DailyQuota, sender: str, n: int, now: float):
        self.quota = quota
        self.sender = sender
        self.n = n
        self.at = now

    def today(self, now: float, want: int) -> int:
        """Units for `want` jobs at `now`: re-reserved on the new day after midnight."""
        if local_day(now, self.quota.tz) == local_day(self.at, self.quota.tz):
            return want
        if self.n:
            self.quota.refund(self.sender, self.n, self.at)
        self.n = self.quota.reserve(self.sender, want, now)
        self.at = now
        return self.n

    def spend(self, k: int) -> None:
        self.n = max(self.n - k, 0)

    def give_back(self) -> None:
        if self.n:
            self.quota.refund(self.sender, self.n, self.at)
            self.n = 0


class Drainer:
    def __init__(
        self,
        *,
        r: redis.Redis,
        settings: Settings,
        provider: Provider,
        consumer: str,
        quota: DailyQuota | None = None,
        control: Control | None = None,
        store: Store | None = None,
        gcra: RateLimiter | None = None,
        reconciler: Reconciler | None = None,
        events: Events | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.r = r
        self.s = settings
        self.keys = Keys(settings.prefix)
        self.provider = provider
        self.consumer = consumer
        self.control = control or Control(r, self.keys, test_clock=settings.test_clock)
        self.quota = quota or DailyQuota(r, prefix=settings.prefix, tz=settings.tz)
        self.quota.seed(settings.daily_limit, settings.daily_limits)
        self.store = store or Store(r, self.keys, ttl=settings.status_ttl)
        self.gcra = gcra
        self.reconciler = reconciler
        self.events = events or Events()
        self.sleep = sleep
        self.leases = Leases(r, self.keys, consumer, tz=settings.tz,
                             lease_seconds=settings.claim_idle, test_clock=settings.test_clock,
                             confirm=replicas(r, settings))
        self.heartbeat = Heartbeat(self.leases, interval=settings.claim_idle / 4)
        self._claim_due: dict[str, float] = {}
        self._unknown_streak = 0
        self._fold = False  # this pass leaves its sent outcome to the next take
        self._unwritten: dict[str, _Unsent] = {}  # sender -> outcome left by a folded pass

    # -- the loop body ---------------------------------------------------------
    def drain_once(self, sender: str, *, fold: bool = False) -> Report:
        """At most one provider call's worth of work for `sender`.

        With `fold`, the outcome of a call that went through is not written at once:
        the jobs stay leased (the heartbeat renews them) and the sender's next take
        writes it in the same round trip, or `flush_outcomes` does (a chain's end).
        Whatever is left from an earlier folded pass is written by this pass's take."""
        report = Report()
        token = Leases.new_token()
        owner = Owner(self.consumer, token)
        claim_ms = self._claim_ms(sender)
        fill = self.s.batch_wait > 0
        deadline = 0.0
        self._fold = fold
        self._before_call()
        while True:
            unsent = self._unwritten.get(sender)
            taken = self.leases.take(sender, self.s.batch_size, token, claim_ms=claim_ms,
                                     fill=fill, object_format=self.s.multi_format == "object",
                                     settle=self._outcome(unsent))
            if unsent is not None:
                self._written(sender, unsent, taken.refused, report)
            if taken.status != "wait":
                break
            # A short normal batch: wait briefly for a fuller one (never for high priority).
            claim_ms = 0
            deadline = deadline or time.monotonic() + self.s.batch_wait
            left = deadline - time.monotonic()
            if left <= 0:
                fill = False
                continue
            self.sleep(min(0.02, left))
        if taken.status in ("paused", "closed", "empty"):
            report.stop = taken.status
            return report
        if taken.claimed:
            self._claim_due[sender] = 0.0  # after a takeover there may be more: look again
        if taken.cancel:
            self._finish(sender, taken.cancel, CANCELLED, owner, report)
        if taken.expired:
            self._finish(sender, taken.expired, EXPIRED, owner, report)
        if taken.unknown:
            self._ambiguous(sender, taken.unknown, owner, report)
        if taken.send and not taken.confirmed:
            self._unreplicated(sender, taken, token, report)
        elif taken.send:
            self._fit_one_call(sender, taken, token)
            budget = _Budget(self.quota, sender, taken.granted, taken.now)
            self.heartbeat.hold(sender, token, taken.send)
            try:
                self._call(sender, taken.send, owner, budget, report, leased=True)
            finally:
                unsent = self._unwritten.get(sender)
                if unsent is not None and unsent.owner == owner:
                    self.heartbeat.hold(sender, token, unsent.jobs)  # until written
                else:
                    self.heartbeat.drop(token)
                budget.give_back()
        return report

    def _outcome(self, unsent: _Unsent | None) -> Outcome | None:
        if unsent is None:
            return None
        return Outcome(unsent.owner.token, unsent.jobs, SENT, cf.SENT, self.store.ttl)

    def _written(self, sender: str, unsent: _Unsent, refused: Sequence[str],
                 report: Report) -> None:
        """A folded outcome is in Redis: count it, stop renewing its leases."""
        self._unwritten.pop(sender, None)
        self.heartbeat.drop(unsent.owner.token)
        n = len(unsent.jobs) - len(refused)
        report.sent += n
        if n:
            self.events.outcome(sender, "sent", n)
        if refused:
            log.warning("%d jobs were taken over by another worker; left to it", len(refused))

    def flush_outcomes(self, sender: str) -> int:
        """Write the outcome a folded pass left for the next take (a chain's end, a
        stop); how many were written. If Redis refuses, the jobs' leases run out
        unrenewed and a later take holds them as `unknown`: never sent again."""
        unsent = self._unwritten.pop(sender, None)
        if unsent is None:
            return 0
        try:
            refused = self.store.finish(unsent.jobs, SENT, unsent.owner)
        finally:
            self.heartbeat.drop(unsent.owner.token)
        n = len(unsent.jobs) - len(refused)
        if n:
            self.events.outcome(sender, "sent", n)
        return n

    def _unreplicated(self, sender: str, taken: Taken, token: str, report: Report) -> None:
        """Leases no replica confirmed: a failover could forget them and let another
        worker send the same jobs. Not sent; freed, the quota given back, and the
        chain ends (the next tick tries again)."""
        self.leases.release(sender, token, taken.send)
        _Budget(self.quota, sender, taken.granted, taken.now).give_back()
        log.warning("leases of %d jobs of %s not confirmed by a replica in %.1f s; "
                    "not sent, tried again shortly", len(taken.send), sender,
                    self.s.replica_timeout)
        report.stop = "replication"

    def _fit_one_call(self, sender: str, taken: Taken, token: str) -> None:
        """A batch of long texts may exceed one call's body size: send what fits,
        free the rest (it stays with us and goes in the next pass)."""
        jobs = taken.send
        if len(jobs) < 2 or jobs[0].options:
            return
        first = multi_slices([(j.to, j.text) for j in jobs], max_count=self.s.batch_size,
                             shape=self.s.multi_format)[0]
        if first.stop < len(jobs):
            self.leases.release(sender, token, jobs[first.stop:])
            del jobs[first.stop:]

    def _claim_ms(self, sender: str) -> int:
        """Look for a dead consumer's entries every few seconds, not every pass:
        nothing can be claimable sooner than `claim_idle` after its holder went silent."""
        if time.monotonic() < self._claim_due.get(sender, 0.0):
            return 0
        self._claim_due[sender] = time.monotonic() + min(self.s.claim_idle / 3, 5.0)
        return max(int(self.s.claim_idle * 1000), 1)

    def hand_back(self, sender: str) -> int:
        """At a chain's end: entries held without a lease go back to the stream."""
        return self.leases.hand_back(sender)

    # -- one call, its retries and its isolation calls --------------------------------
    def _call(self, sender: str, jobs: list[Job], owner: Owner, budget: _Budget,
              report: Report, *, leased: bool, isolation: bool = False) -> None:
        state = _CallState(jobs, leased)
        started = time.monotonic()

        def attempt() -> None:
            if not state.leased:
                state.jobs = self._lease_again(sender, state.jobs, owner, budget, report)
            state.leased = False
            group = state.jobs
            if not group:
                return
            group = state.jobs = self._throttle(sender, group, owner)
            if not group:
                return
            report.calls += 1
            if isolation:
                report.isolation_calls += 1
            if len(group) == 1 and group[0].options:
                j = group[0]
                state.result = self.provider.send(j.to, j.text, sender, **j.options)
            else:
                state.result = self.provider.send_multi(sender, [(j.to, j.text) for j in group])

        def before_sleep() -> None:  # a certain refusal: not sent, so not ours to hold
            self.leases.release(sender, owner.token, state.jobs)

        policy = retrying(self.s.retry_attempts, self.s.retry_max_wait,
                          before_sleep=before_sleep,
                          on_retry=lambda exc: self._retried(sender, exc, report),
                          sleep=self.sleep)
        err: ProviderError | TransportError | None = None
        try:
            policy(attempt)
        except (ProviderError, TransportError) as exc:
            err = exc
        seconds = time.monotonic() - started
        jobs = state.jobs
        if not jobs:
            return
        if err is None:
            confirmed = getattr(state.result, "confirmed", ()) or (True,) * len(jobs)
            sent = [j for j, ok in zip(jobs, confirmed, strict=False) if ok]
            missing = [j for j, ok in zip(jobs, confirmed, strict=False) if not ok]
            self.events.batch(sender, len(jobs), "sent" if not missing else "partial", None,
                              seconds)
            self._sent(sender, sent, owner, report)
            budget.spend(len(sent))
            self._unknown_streak = 0
            if missing:  # accepted as a call, but no id for these: may or may not be sent
                t0 = self.leases.now() - seconds
                budget.spend(self._ambiguous(sender, [(j, t0) for j in missing], owner, report))
            return
        decision = decide(err, len(jobs))
        if decision.action is Action.HOLD:
            self.events.batch(sender, len(jobs), "unknown", _code(err), seconds)
            t0 = self.leases.now() - seconds
            budget.spend(self._ambiguous(sender, [(j, t0) for j in jobs], owner, report))
            self._unknown_streak += 1
            if self._unknown_streak >= UNKNOWN_STREAK:
                self._pause_all("unknown", _code(err), f"{self._unknown_streak} calls in a row "
                                f"ended without a readable answer ({err})", report)
            return
        self._unknown_streak = 0
        # Certainly refused: release first, so whatever happens next, a crash resends.
        self.leases.release(sender, owner.token, jobs)
        if decision.action is Action.SPLIT:
            self.events.batch(sender, len(jobs), "split", _code(err), seconds)
            mid = len(jobs) // 2
            for half in (jobs[:mid], jobs[mid:]):
                if report.stop:
                    self._requeue(sender, half, owner, report)
                else:
                    self._call(sender, half, owner, budget, report, leased=False,
                               isolation=True)
            return
        self.events.batch(sender, len(jobs), _label(err), _code(err), seconds)
        self._act(sender, jobs, err, decision, owner, report)

    def _retried(self, sender: str, exc: BaseException, report: Report) -> None:
        report.codes[str(_code(exc))] += 1
        self.events.retry(sender, exc)

    def _before_call(self) -> None:
        """Renew an OAuth token before taking leases on the wire, not under them."""
        self.provider.ready()

    def _lease_again(self, sender: str, jobs: list[Job], owner: Owner, budget: _Budget,
                     report: Report) -> list[Job]:
        """Right before an attempt: what is still ours, unexpired, within today's quota."""
        try:
            mine, now = self.leases.retake(sender, owner.token, jobs)
        except NotReplicated as exc:  # freed again; they go back when the chain ends
            log.warning("%s; not sent, tried again shortly", exc)
            report.stop = "replication"
            return []
        if len(mine) < len(jobs):
            log.warning("%d jobs of sender %s were taken over; left to their new holder",
                        len(jobs) - len(mine), sender)
        expired = [j for j in mine if j.expires_at is not None and j.expires_at <= now]
        if expired:
            self._finish(sender, expired, EXPIRED, owner, report)
            mine = [j for j in mine if j not in expired]
        granted = budget.today(now, len(mine))
        if granted < len(mine):  # past midnight, and the new day has less room
            self._requeue(sender, mine[granted:], owner, report)
            mine = mine[:granted]
            if not mine:
                report.stop = "closed"
        return mine

    def _throttle(self, sender: str, jobs: list[Job], owner: Owner) -> list[Job]:
        """The optional per-second cap; jobs are not held on the wire while we wait."""
        if self.gcra is None:
            return jobs
        wait = self.gcra.acquire(len(jobs))
        if wait <= 0:
            return jobs
        self.leases.release(sender, owner.token, jobs)
        while wait > 0:
            self.sleep(min(wait, 1.0))
            wait = self.gcra.acquire(len(jobs))
        mine, _ = self.leases.retake(sender, owner.token, jobs)
        return mine

    # -- outcomes --------------------------------------------------------------------
    def _sent(self, sender: str, jobs: list[Job], owner: Owner, report: Report) -> None:
        """Accepted by the provider: written now, or (folding) by the next take."""
        if not self._fold or not jobs:
            self._finish(sender, jobs, SENT, owner, report)
            return
        unsent = self._unwritten.get(sender)
        if unsent is not None and unsent.owner != owner:
            report.sent += self.flush_outcomes(sender)
            unsent = None
        if unsent is None:
            self._unwritten[sender] = _Unsent(owner, list(jobs))
        else:
            unsent.jobs += jobs

    def _finish(self, sender: str, jobs: list[Job], state: str, owner: Owner, report: Report,
                code: str = "") -> int:
        refused = set(self.store.finish(jobs, state, owner, code=code))
        n = len(jobs) - len(refused)
        name = {SENT: "sent", FAILED: "failed", EXPIRED: "expired", UNKNOWN: "unknown",
                CANCELLED: "cancelled"}[state]
        if state == SENT:
            report.sent += n
        elif state == FAILED:
            report.failed += n
        elif state == EXPIRED:
            report.expired += n
        elif state == UNKNOWN:
            report.held += n
        if n:
            self.events.outcome(sender, name, n, code)
            if code:
                report.codes[code] += n
        return n

    def _requeue(self, sender: str, jobs: list[Job], owner: Owner, report: Report,
                 delay: float = 0.0) -> None:
        refused = self.store.requeue(jobs, owner, now=self.leases.now(), delay=delay)
        if delay > 0:
            report.deferred += len(jobs) - len(refused)
        else:
            report.requeued += len(jobs) - len(refused)

    def _ambiguous(self, sender: str, pending: list[tuple[Job, float]], owner: Owner,
                   report: Report) -> int:
        """Jobs whose call may have reached the provider: ask, never resend blindly.

        Returns how many stay counted against the quota (accepted or held)."""
        jobs = [j for j, _ in pending]
        since = min(t for _, t in pending) - 1.0
        answer = None
        if self.reconciler is not None:
            try:
                answer = self.reconciler.accepted(sender, jobs, since)
            except Exception as exc:
                # Cannot ask now: the leases run out and a later pass asks again.
                log.warning("reconcile failed for sender %s (%s); %d jobs wait", sender,
                            exc, len(jobs))
                return len(jobs)
        if answer is None:
            log.warning("holding %d jobs of sender %s with unknown outcome", len(jobs), sender)
            return self._finish(sender, jobs, UNKNOWN, owner, report)
        sent = [j for j, ok in zip(jobs, answer, strict=True) if ok]
        rest = [j for j, ok in zip(jobs, answer, strict=True) if not ok]
        n = self._finish(sender, sent, SENT, owner, report) if sent else 0
        if rest:  # certainly not accepted: free, and sent by a later pass
            self.leases.release(sender, owner.token, rest)
        return n

    def _pause_all(self, reason: str, code: int | str | None, detail: str,
                   report: Report) -> None:
        self.control.pause(reason=reason, code=code, by=self.consumer)
        self.events.alert(reason, code, detail)
        report.stop = "paused"

    def _act(self, sender: str, jobs: list[Job], err: ProviderError | TransportError,
             decision: Decision, owner: Owner, report: Report) -> None:
        """Carry out `policy.decide`'s verdict on a certainly refused call."""
        code = _code(err)
        if decision.action is Action.RETRY_LATER:
            self._retry_later(sender, jobs, err, owner, report)
        elif decision.action is Action.PAUSE:
            self._requeue(sender, jobs, owner, report)
            detail = err.description if isinstance(err, ProviderError) else str(err)
            self._pause_all(decision.reason, code, detail, report)
        elif decision.action is Action.CLOSE_SENDER:
            self.quota.close_for_today(sender, self.leases.now())
            self._requeue(sender, jobs, owner, report)
            report.stop = "closed"
        else:  # FAIL: per-number (isolated), sender errors, bad requests, too large alone
            self._finish(sender, jobs, FAILED, owner, report, code=str(code))

    def _retry_later(self, sender: str, jobs: list[Job], err: BaseException, owner: Owner,
                     report: Report) -> None:
        """Retries exhausted: back to the queue after a delay, or failed past max age."""
        now = self.leases.now()
        old = [j for j in jobs if now - (j.enqueued_at() or now) > self.s.max_age]
        young = [j for j in jobs if j not in old]
        if old:
            self._finish(sender, old, FAILED, owner, report, code=str(_code(err)))
        if young:
            self._requeue(sender, young, owner, report,
                          delay=requeue_delay(err, self.s.retry_delay))


def _code(err: BaseException | None) -> int | str | None:
    if err is None:
        return None
    if isinstance(err, ProviderError):
        return err.code
    status = getattr(err, "status", None)
    return f"http{status}" if status else type(err).__name__


def _label(err: BaseException | None) -> str:
    if err is None:
        return "sent"
    if isinstance(err, OutcomeUnknown):
        return "unknown"
    if isinstance(err, ProviderError):
        return err.kind.value
    return "transport"

