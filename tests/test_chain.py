"""The drain chain's loop with a fake clock: budget, stop, a lost slot, a Redis outage."""

from __future__ import annotations

import pytest
import redis

from dreams_sms.worker.chain import Chain
from dreams_sms.worker.drain import Report


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


class FakeHeartbeat:
    def __init__(self):
        self.jobs: dict = {}

    def every(self, name, fn):
        self.jobs[name] = fn

    def forget(self, name):
        self.jobs.pop(name)


class FakeEvents:
    flushed = 0

    def flush(self):
        self.flushed += 1


class FakeDrainer:
    """Each pass takes `step` seconds of the fake clock and sends 100."""

    def __init__(self, clock: Clock, plan: list, step: float = 1.0):
        self.clock, self.plan, self.step = clock, list(plan), step
        self.heartbeat, self.events = FakeHeartbeat(), FakeEvents()
        self.handed_back = self.flushed = 0

    def drain_once(self, sender, fold=False):
        assert fold  # a chain leaves each outcome to the next take
        self.clock.t += self.step
        item = self.plan.pop(0) if self.plan else Report(sent=100, calls=1)
        if isinstance(item, BaseException):
            raise item
        return item

    def hand_back(self, sender):
        self.handed_back += 1

    def flush_outcomes(self, sender):
        self.flushed += 1
        return 0


class FakeControl:
    def __init__(self, keep: bool = True):
        self.keep, self.released, self.refreshes = keep, [], 0

    def refresh_slot(self, sender, token, ttl):
        self.refreshes += 1
        return self.keep

    def release_slot(self, sender, token):
        self.released.append((sender, token))


def chain(drainer, control, clock, published):
    return Chain(drainer, control, publish=lambda s, t: published.append((s, t)), slot_ttl=10,
                 budget=5.0, grace=3.0, clock=clock, sleep=clock.sleep)


def test_a_link_drains_for_its_budget_then_publishes_its_successor():
    clock, published = Clock(), []
    d, c = FakeDrainer(clock, []), FakeControl()
    out = chain(d, c, clock, published).run("Promo", "t1")
    assert published == [("Promo", "t1")] and c.released == []
    assert out == {"sender": "Promo", "sent": 500, "calls": 5}
    assert d.heartbeat.jobs == {} and d.handed_back == 1 and d.events.flushed == 1


def test_a_stop_releases_the_slot_and_ends_the_chain():
    clock, published = Clock(), []
    d = FakeDrainer(clock, [Report(sent=100, calls=1), Report(stop="empty")])
    c = FakeControl()
    out = chain(d, c, clock, published).run("Promo", "t1")
    assert published == [] and c.released == [("Promo", "t1")]
    assert out == {"sender": "Promo", "sent": 100, "calls": 1, "stop": "empty"}


def test_a_lost_slot_ends_the_link_before_any_pass():
    clock, published = Clock(), []
    d = FakeDrainer(clock, [])
    out = chain(d, FakeControl(keep=False), clock, published).run("Promo", "t1")
    assert out == {"sender": "Promo", "stop": "slot-lost"} and published == []


def test_a_short_redis_outage_is_waited_out_a_long_one_raises():
    clock, published = Clock(), []
    down = redis.ConnectionError("down")
    d = FakeDrainer(clock, [down, down, Report(stop="empty")], step=0.0)
    out = chain(d, FakeControl(), clock, published).run("Promo", "t1")
    assert out["stop"] == "empty" and clock.t == 1002.0
    d = FakeDrainer(clock, [down] * 10, step=0.0)
    with pytest.raises(redis.ConnectionError):
        chain(d, FakeControl(), clock, published).run("Promo", "t1")
    assert d.heartbeat.jobs == {}  # the slot is no longer refreshed for a dead link


def test_importing_the_worker_modules_builds_nothing():
    import os
    import subprocess
    import sys

    env = {**os.environ, "DREAMS_BATCH_SIZE": "not a number", "REDIS_URL": "redis://127.0.0.1:1/0"}
    code = "import dreams_sms.worker.tasks, dreams_sms.worker.drain, dreams_sms.worker.chain"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-c", "import dreams_sms.worker.celery"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "DREAMS_BATCH_SIZE" in done.stderr  # composed: checked
