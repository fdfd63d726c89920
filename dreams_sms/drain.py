"""Draining one sender's stream into provider calls: the worker's logic.

Plain code with its I/O passed in, so it runs the same under a Celery task,
a test or a benchmark. One `drain_once` takes at most one batch:

    paused? closed? -> take over a dead consumer's entries, or reserve quota
    and read new ones (high priority first) -> status guard -> mark sending
    -> sendsms_multi with retries -> record each outcome and acknowledge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import redis

from .config import Settings
from .control import Control
from .errors import OutcomeUnknown, ProviderError, TransportError
from .events import Events
from .jobs import CANCELLED, EXPIRED, FAILED, SENDING, SENT, UNKNOWN, Job
from .keys import Keys
from .quota import DailyQuota
from .retry import retrying
from .store import TO_CANCEL, Store
from .streams import SenderStreams

log = logging.getLogger("dreams_sms.drain")

FINAL = {SENT, FAILED, EXPIRED, UNKNOWN, CANCELLED}


class Provider(Protocol):
    def send_multi(self, sender: str, items: Sequence[tuple[str, str]]) -> object: ...
    def send(self, to: str, message: str, sender: str, **options: str) -> object: ...


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

    def add(self, other: Report) -> None:
        for name in ("sent", "failed", "expired", "requeued", "deferred", "held", "calls",
                     "isolation_calls"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Call:
    """One provider call's jobs and what came of it."""

    jobs: list[Job]
    error: BaseException | None = None
    seconds: float = 0.0
    isolation: bool = False
    children: list[_Call] = field(default_factory=list)


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
        gcra: object | None = None,
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
        self.quota = quota or DailyQuota(r, prefix=settings.prefix, tz=settings.tz,
                                         default_limit=settings.limit_for)
        self.store = store or Store(r, self.keys, ttl=settings.status_ttl)
        self.gcra = gcra
        self.reconciler = reconciler
        self.events = events or Events()
        self.sleep = sleep
        self.streams = SenderStreams(r, settings, consumer, sleep=sleep)

    # -- the loop body ---------------------------------------------------------
    def drain_once(self, sender: str) -> Report:
        report = Report()
        paused, now = self.control.paused_and_now(sender)
        if paused:
            report.stop = "paused"
            return report
        jobs = self.streams.claim(sender)
        reserved = 0
        if not jobs:
            reserved = self.quota.reserve(sender, self.s.batch_size, now)
            if reserved == 0:
                report.stop = "closed"
                return report
            jobs = self.streams.read(sender, reserved)
            if len(jobs) < reserved:
                self.quota.refund(sender, reserved - len(jobs), now)
                reserved = len(jobs)
            if not jobs:
                report.stop = "empty"
                return report
        self._process(sender, jobs, reserved, now, report)
        return report

    # -- processing ----------------------------------------------------------------
    def _process(self, sender: str, jobs: list[Job], reserved: int, now: float,
                 report: Report) -> None:
        fresh: list[Job] = []
        ambiguous: list[tuple[Job, float]] = []
        done: list[Job] = []
        expired: list[Job] = []
        cancelled: list[Job] = []
        for job, (state, detail) in zip(jobs, self.store.states(jobs), strict=True):
            if state == CANCELLED and detail == TO_CANCEL:
                cancelled.append(job)
            elif state in FINAL:
                done.append(job)
            elif state == SENDING:
                job.sending = True
                ambiguous.append((job, float(detail or 0)))
            elif job.expires_at is not None and job.expires_at <= now:
                expired.append(job)
            else:
                fresh.append(job)
        self.store.ack(done)
        if cancelled:
            self.store.finish(cancelled, CANCELLED)
            self.events.outcome(sender, "cancelled", len(cancelled))
        if expired:
            self.store.finish(expired, EXPIRED)
            report.expired += len(expired)
            self.events.outcome(sender, "expired", len(expired))
        if ambiguous:
            fresh += self._reconcile(sender, ambiguous, now, report)

        # Quota: exactly one unit per job we are about to send.
        need = len(fresh) - reserved
        if need > 0:
            extra = self.quota.reserve(sender, need, now)
            if extra < need:
                over = fresh[len(fresh) - (need - extra):]
                fresh = fresh[: len(fresh) - len(over)]
                self.store.requeue(over, now=now)
                report.requeued += len(over)
            reserved += extra
        elif need < 0:
            self.quota.refund(sender, -need, now)
            reserved = len(fresh)

        singles = [j for j in fresh if j.options]
        plain = [j for j in fresh if not j.options]
        groups = [[j] for j in singles] + [plain[i:i + self.s.batch_size]
                                           for i in range(0, len(plain), self.s.batch_size)]
        accepted = 0
        for group in groups:
            if report.stop:
                self.store.requeue(group, now=now)
                report.requeued += len(group)
                continue
            accepted += self._send_group(sender, group, now, report)
        if reserved > accepted:
            self.quota.refund(sender, reserved - accepted, now)

    def _reconcile(self, sender: str, pending: list[tuple[Job, float]], now: float,
                   report: Report) -> list[Job]:
        """Jobs found `sending` after a crash: ask, never resend blindly."""
        jobs = [j for j, _ in pending]
        since = min(t for _, t in pending) - 1.0
        answer = None
        if self.reconciler is not None:
            try:
                answer = self.reconciler.accepted(sender, jobs, since)
            except Exception as exc:
                # Cannot ask now: leave them `sending` and pending in the stream;
                # they come back through XAUTOCLAIM and are asked again.
                log.warning("reconcile failed for sender %s (%s); %d jobs wait", sender,
                            exc, len(jobs))
                return []
        if answer is None:
            self.store.finish(jobs, UNKNOWN)
            report.held += len(jobs)
            self.events.outcome(sender, "unknown", len(jobs))
            log.warning("holding %d jobs of sender %s with unknown outcome", len(jobs), sender)
            return []
        sent = [j for j, ok in zip(jobs, answer, strict=True) if ok]
        self.store.finish(sent, SENT)
        report.sent += len(sent)
        self.events.outcome(sender, "sent", len(sent))
        return [j for j, ok in zip(jobs, answer, strict=True) if not ok]

    def _send_group(self, sender: str, jobs: list[Job], now: float, report: Report) -> int:
        """Send one group (a multi batch or a single optioned job); returns accepted count."""
        self._throttle(jobs)
        self.store.mark_sending(jobs, now)
        call = self._call(sender, jobs, report)
        return self._settle(sender, call, now, report)

    def _throttle(self, jobs: Sequence[Job]) -> None:
        if self.gcra is None:
            return
        while (wait := self.gcra.acquire(len(jobs))) > 0:  # type: ignore[attr-defined]
            self.streams.touch(jobs)
            self.sleep(min(wait, 1.0))

    def _call(self, sender: str, jobs: list[Job], report: Report,
              isolation: bool = False) -> _Call:
        """One provider call with retries; per-number errors split the batch."""
        call = _Call(jobs, isolation=isolation)
        started = time.monotonic()

        def attempt() -> None:
            report.calls += 1
            if isolation:
                report.isolation_calls += 1
            if len(jobs) == 1 and jobs[0].options:
                j = jobs[0]
                self.provider.send(j.to, j.text, sender, **j.options)
            else:
                self.provider.send_multi(sender, [(j.to, j.text) for j in jobs])

        attempts = 0

        def before() -> None:  # entries just read are fresh; keep them so while we retry
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self.streams.touch(jobs)

        policy = retrying(self.s.retry_attempts, self.s.retry_max_wait,
                          before_attempt=before,
                          on_retry=lambda exc: self.events.retry(sender, exc), sleep=self.sleep)
        try:
            policy(attempt)
        except (ProviderError, TransportError) as exc:
            call.error = exc
        call.seconds = time.monotonic() - started
        err = call.error
        if isinstance(err, ProviderError) and err.is_per_number and len(jobs) > 1:
            mid = len(jobs) // 2
            call.children = [self._call(sender, jobs[:mid], report, True),
                             self._call(sender, jobs[mid:], report, True)]
        return call

    def _settle(self, sender: str, call: _Call, now: float, report: Report) -> int:
        if call.children:
            self.events.batch(sender, len(call.jobs), "split", _code(call.error), call.seconds)
            return sum(self._settle(sender, c, now, report) for c in call.children)
        jobs, err = call.jobs, call.error
        self.events.batch(sender, len(jobs), _label(err), _code(err), call.seconds)
        if err is None:
            self.store.finish(jobs, SENT)
            report.sent += len(jobs)
            self.events.outcome(sender, "sent", len(jobs))
            return len(jobs)
        if isinstance(err, OutcomeUnknown):
            since = now - 1.0
            for j in jobs:
                j.sending = True
            rest = self._reconcile(sender, [(j, since) for j in jobs], now, report)
            if rest:
                self.store.requeue(rest, now=now)
                report.requeued += len(rest)
            return len(jobs) - len(rest)  # held jobs may have landed: keep them counted
        if isinstance(err, TransportError):  # retries exhausted, certainly not accepted
            self._retry_later(sender, jobs, err, now, report)
            return 0
        assert isinstance(err, ProviderError)
        if err.retryable:
            self._retry_later(sender, jobs, err, now, report)
        elif err.is_balance:
            self.control.pause(reason="balance", code=err.code, by=self.consumer)
            self.events.alert("balance", err.code, err.description)
            self.store.requeue(jobs, now=now)
            report.requeued += len(jobs)
            report.stop = "paused"
        elif err.is_account:
            self.control.pause(reason="account", code=err.code, by=self.consumer)
            self.events.alert("account", err.code, err.description)
            self.store.requeue(jobs, now=now)
            report.requeued += len(jobs)
            report.stop = "paused"
        elif err.is_sender_limit:
            self.quota.close_for_today(sender, now)
            self.store.requeue(jobs, now=now)
            report.requeued += len(jobs)
            report.stop = "closed"
        else:  # per-number (isolated), sender errors, bad requests: final
            self.store.finish(jobs, FAILED, code=str(err.code))
            report.failed += len(jobs)
            self.events.outcome(sender, "failed", len(jobs), str(err.code))
        return 0

    def _retry_later(self, sender: str, jobs: list[Job], err: BaseException, now: float,
                     report: Report) -> None:
        """Retries exhausted: back to the queue after a delay, or failed past max age."""
        code = _code(err)
        old = [j for j in jobs if now - (j.enqueued_at() or now) > self.s.max_age]
        young = [j for j in jobs if j not in old]
        if old:
            self.store.finish(old, FAILED, code=str(code))
            report.failed += len(old)
            self.events.outcome(sender, "failed", len(old), str(code))
        if young:
            self.store.requeue(young, now=now, delay=self.s.retry_delay)
            report.deferred += len(young)


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
