"""One link of a drain chain: passes for one sender until the budget is spent.

A chain is a Celery task that drains one sender for `budget` seconds, then
publishes its own successor, so senders take turns on the worker slots. It
holds a drain slot (so at most `sender_parallelism` chains run per sender),
refreshed by the drainer's heartbeat as long as the link runs, and waits out
a Redis restart instead of dropping the chain. Plain code with its clock,
sleep and publishing passed in, so it is tested without Celery.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from dreams_sms.queue.control import Control
from dreams_sms.worker.drain import Drainer, Report

log = logging.getLogger("dreams_sms.worker.chain")

#: How long one link keeps taking batches before handing over to the queue.
BUDGET = 5.0
#: How long a link waits out a Redis outage before giving up (beat restarts it).
REDIS_OUTAGE_GRACE = 60.0
_REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


@dataclass
class Chain:
    drainer: Drainer
    control: Control
    publish: Callable[[str, str], object]  # (sender, slot token): the next link
    slot_ttl: float
    budget: float = BUDGET
    grace: float = REDIS_OUTAGE_GRACE
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def run(self, sender: str, token: str) -> dict[str, object]:
        """Drain `sender` for up to `budget` seconds; a summary for Flower."""
        name = f"slot:{sender}:{token}"
        lost = threading.Event()

        def refresh() -> None:
            if not self.control.refresh_slot(sender, token, self.slot_ttl):
                lost.set()

        # The heartbeat keeps the slot as long as the link runs, however long a call
        # takes; the loop only looks at what it found (no round trip per pass).
        self.drainer.heartbeat.every(name, refresh)
        try:
            return self._loop(sender, token, lost)
        finally:
            self.drainer.heartbeat.forget(name)
            try:  # left by a pass that failed or a lost slot (else written already)
                self.drainer.flush_outcomes(sender)
            except redis.RedisError as exc:  # leases run out: held as unknown, never resent
                log.warning("could not record the last outcome of %s: %s", sender, exc)
            try:
                self.drainer.hand_back(sender)
            except redis.RedisError as exc:  # they come back through the takeover timer
                log.warning("could not hand back entries of %s: %s", sender, exc)
            self.drainer.events.flush()

    def _loop(self, sender: str, token: str, lost: threading.Event) -> dict[str, object]:
        deadline = self.clock() + self.budget
        total = Report()
        down_since: float | None = None
        checked = False
        while True:
            try:
                if not checked:  # once per link: the slot may have lapsed while queued
                    if not self.control.refresh_slot(sender, token, self.slot_ttl):
                        lost.set()
                    checked = True
                if lost.is_set():
                    total.stop = "slot-lost"  # a newer chain owns it
                    return total.summary(sender)
                # Each pass's outcome rides in the next pass's take (one round trip);
                # the last one is written before the chain hands over.
                report = self.drainer.drain_once(sender, fold=True)
            except _REDIS_DOWN as exc:
                # Redis restarting: hold the chain instead of dropping it; whatever
                # we held is still pending in the stream and will be settled.
                down_since = self.clock() if down_since is None else down_since
                if self.clock() - down_since > self.grace:
                    raise
                log.warning("redis unavailable (%s); drain of %s waits", exc, sender)
                self.sleep(1.0)
                continue
            down_since = None
            total.add(report)
            if report.stop:
                total.stop = report.stop
                total.sent += self.drainer.flush_outcomes(sender)
                self.control.release_slot(sender, token)
                return total.summary(sender)
            if self.clock() >= deadline:
                total.sent += self.drainer.flush_outcomes(sender)
                self.publish(sender, token)
                return total.summary(sender)
