"""Chaos: campaigns through real worker processes while things break.

Each scenario ends by comparing the sandbox's record of accepted messages with
what was enqueued: every message accepted exactly once, or (refused for good)
failed with the provider's code. The table is printed at the end of the run.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from e2e_helpers import CHAOS_RESULTS, make_stack, nums, producer_for, wait_for
from sentinel_set import SentinelSet

from dreams_sms.errors import BulkInterrupted
from dreams_sms.ops.stack import Stack
from dreams_sms.queue.quota import next_midnight
from dreams_sms.sandbox.testing import SandboxAdmin

pytestmark = pytest.mark.chaos


class Run:
    """One scenario: a fresh stack, a campaign, and the sandbox's record."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.admin = SandboxAdmin(stack.sandbox_url)
        self.p = producer_for(stack)
        self.expected: Counter = Counter()
        self.cids: list[str] = []
        self.records: list[dict] = []  # kept across sandbox restarts
        self.started = time.monotonic()

    def enqueue(self, sender: str, n: int, start: int, tag: str, *,
                options: dict | None = None, priority: str = "normal") -> str:
        rows = [(x, f"{tag} {i} {'مرحبا' if i % 4 == 0 else 'hello'}")
                for i, x in enumerate(nums(n, start))]
        return self.enqueue_rows(sender, rows, options=options, priority=priority)

    def enqueue_rows(self, sender: str, rows: list[tuple[str, str]], *,
                     options: dict | None = None, priority: str = "normal") -> str:
        self.expected.update((sender, x, t) for x, t in rows)
        cid = self.p.send_bulk(sender, [(x, t, options) if options else (x, t) for x, t in rows],
                               priority=priority)
        self.cids.append(cid)
        return cid

    def accepted(self) -> int:
        return len(self.records) + self.admin.stats()["accepted"]

    def save_record(self) -> None:
        self.records += self.admin.messages()

    def done(self) -> bool:
        try:
            return all(self.p.campaign_status(c).done for c in self.cids)
        except redis.RedisError:  # a failover under way: ask again in a moment
            return False

    def wait_done(self, timeout: float = 240) -> None:
        wait_for(self.done, timeout, "the campaign to finish", self.stack, every=0.5)

    def result(self, name: str, failed_expected: int = 0) -> dict:
        record = self.records + self.admin.messages()
        got = Counter((m["sender"], m["to"], m["text"]) for m in record)
        failed = sum(self.p.campaign_status(c).failed for c in self.cids)
        held = sum(self.p.campaign_status(c).unknown for c in self.cids)
        row = {
            "scenario": name,
            "enqueued": sum(self.expected.values()),
            "accepted_once": sum(1 for k in self.expected if got[k] >= 1),
            "duplicates": sum(v - 1 for v in got.values() if v > 1)
            + sum(v for k, v in got.items() if k not in self.expected),
            # Failed (refused for good) and held messages are accounted for, not lost.
            "lost": max(sum(1 for k in self.expected if got[k] == 0) - failed - held, 0),
            "failed_with_code": failed,
            "held_unknown": held,
            # What the campaign counters say was sent, against the record.
            "counted_sent": sum(self.p.campaign_status(c).sent for c in self.cids),
            "wall_s": round(time.monotonic() - self.started, 1),
        }
        CHAOS_RESULTS.append(row)
        return row


@pytest.fixture
def run(request) -> Iterator[Run]:
    params = getattr(request, "param", {})
    stack = make_stack(**params)
    stack.start()
    try:
        yield Run(stack)
    finally:
        stack.stop()


def assert_clean(row: dict, failed: int = 0) -> None:
    assert row["lost"] == 0, row
    assert row["duplicates"] == 0, row
    assert row["held_unknown"] == 0, row
    assert row["failed_with_code"] == failed, row
    assert row["accepted_once"] + row["failed_with_code"] == row["enqueued"], row


@pytest.mark.parametrize("run", [{"workers": 2, "concurrency": 2}], indirect=True)
def test_1_workers_sigkilled_three_times(run):
    run.admin.faults(latency_ms=15)
    for k, sender in enumerate(("Dreams", "Alerts")):
        run.enqueue(sender, 10_000, k * 100_000, "kill")
    for target in (4000, 9000, 14000):
        wait_for(lambda t=target: run.accepted() >= t, 120, f"{target} accepted", run.stack)
        alive = [i for i, w in enumerate(run.stack.workers) if w.alive()]
        run.stack.kill_worker(alive[0])
        run.stack.start_worker()
    run.wait_done()
    assert_clean(run.result("1. 3 workers SIGKILLed"))


@pytest.mark.parametrize("run", [{"redis_aof": True}], indirect=True)
def test_2_redis_restarted(run):
    run.admin.faults(latency_ms=10)
    run.enqueue("Dreams", 8000, 0, "redis")
    wait_for(lambda: run.accepted() >= 2000, 120, "sending to start", run.stack)
    run.stack.redis.stop()
    time.sleep(2)
    run.stack.redis.start()
    run.wait_done()
    assert_clean(run.result("2. Redis restarted (AOF)"))


@pytest.mark.parametrize("run", [{"env": {"DREAMS_RETRY_ATTEMPTS": "6"},
                                  "sandbox_args": ["--seed", "11"]}], indirect=True)
def test_3_provider_errors_hangs_and_5xx(run):
    run.admin.faults(error_rate=0.3, hang_rate=0.03, hang_s=3, http5xx_rate=0.05)
    run.enqueue("Dreams", 3000, 0, "flaky")
    run.enqueue("Promo", 2000, 50_000, "flaky")
    run.wait_done()
    answers = run.admin.stats()["answers"]["sendsms_multi"]
    assert answers.get("hang", 0) > 0 and sum(answers.get(k, 0) for k in ("-114", "-118")) > 0
    assert_clean(run.result("3. 30% -114/-118 + hangs + 5xx"))


def test_4_sandbox_down_10s(run):
    run.admin.faults(latency_ms=10)
    run.enqueue("Alerts", 6000, 0, "down")
    wait_for(lambda: run.accepted() >= 1500, 120, "sending to start", run.stack)
    run.stack.stop_sandbox()  # its journal keeps the record of what it accepted
    time.sleep(10)
    run.stack.start_sandbox()
    run.wait_done()
    assert_clean(run.result("4. sandbox down 10 s"))


@pytest.mark.parametrize("policy", ["reconcile", "hold"])
def test_5_accepted_then_connection_dropped(policy):
    stack = make_stack(env={"DREAMS_ON_UNKNOWN": policy}, sandbox_args=["--seed", "5"])
    stack.start()
    try:
        r = Run(stack)
        r.admin.faults(drop_after_accept_rate=0.1)
        r.enqueue("Dreams", 4000, 0, f"drop-{policy}")
        r.wait_done()
        drops = r.admin.stats()["answers"]["sendsms_multi"].get("drop_after_accept", 0)
        row = r.result(f"5. accepted then dropped ({policy})")
        row["drops"] = drops
        assert drops > 0
        assert row["duplicates"] == 0, row
        if policy == "reconcile":
            assert_clean(row)
        else:
            # Held for review, never resent: the provider had accepted every one of them.
            assert row["accepted_once"] == row["enqueued"], row
            assert row["lost"] == 0 and row["failed_with_code"] == 0, row
            # Every message is either counted sent or held, none both, none neither.
            assert row["counted_sent"] + row["held_unknown"] == row["enqueued"], row
            # The held jobs are the messages of the dropped calls: at least one per
            # dropped call, at most a batch per dropped call, each accepted exactly once.
            held = r.p.store.held(limit=10**9)
            assert len(held) == row["held_unknown"] > 0, row
            answers = r.admin.stats()["answers"]
            every_drop = sum(a.get("drop_after_accept", 0) for a in answers.values())
            assert drops <= len(held) <= every_drop * r.p.settings.batch_size, (drops, row)
            got = Counter((m["sender"], m["to"], m["text"]) for m in r.admin.messages())
            assert all(got[(j.sender, j.to, j.text)] == 1 for j in held), row
    finally:
        stack.stop()


def test_6_balance_exhausted_then_topped_up(run):
    run.admin.set_balance(2500)
    run.enqueue("Dreams", 6000, 0, "balance")
    wait_for(lambda: run.p.control.paused() is not None, 120, "the -113 pause", run.stack)
    time.sleep(5)
    run.admin.add_balance(20_000)
    run.wait_done()
    assert run.p.control.paused() is None
    assert_clean(run.result("6. -113, topped up after 5 s"))


def test_7_provider_daily_limit_123(run):
    run.admin.sender("Promo", daily_limit=1500)
    run.enqueue("Promo", 4000, 0, "limit")
    other = run.enqueue("Alerts", 3000, 100_000, "other")
    wait_for(lambda: run.p.campaign_status(other).done, 120, "the other sender", run.stack)
    promo = run.cids[0]
    wait_for(lambda: run.p.campaign_status(promo).closed_today, 60, "Promo closed", run.stack)
    assert run.admin.stats()["by_sender"]["Promo"] == 1500
    now = run.p.control.now()
    offset = next_midnight(now, run.p.settings.tz) - now + 5
    run.p.control.set_clock_offset(offset)
    run.admin.clock(offset)
    wait_for(lambda: run.admin.stats()["by_sender"]["Promo"] >= 3000, 120, "day 2", run.stack)
    offset += 86_400
    run.p.control.set_clock_offset(offset)
    run.admin.clock(offset)
    run.wait_done()
    assert_clean(run.result("7. -123 mid-campaign, next day"))


# -- ownership at a slow provider ----------------------------------------------------------
# The production policy (hold), and a provider slow enough that one pass of the
# old design outlasted the takeover timer (DREAMS_CLAIM_IDLE=6 in these stacks).
HOLD = {"DREAMS_ON_UNKNOWN": "hold"}


def assert_owned(row: dict, failed: int = 0) -> None:
    """Exactly once, and the campaign counters agree with the provider's record."""
    assert_clean(row, failed)
    assert row["counted_sent"] == row["accepted_once"], row


@pytest.mark.parametrize("run", [{"workers": 2, "concurrency": 2, "env": HOLD}], indirect=True)
def test_8_invitations_at_a_slow_provider(run):
    run.admin.faults(latency_ms=1000)
    run.enqueue("Dreams", 40, 0, "invite", options={"location_url": "https://maps.google.com/?q=1"})
    run.enqueue("Dreams", 150, 1000, "plain")
    run.wait_done()
    assert_owned(run.result("8. 40 invitations + 150 at 1 s per call"))


@pytest.mark.parametrize("run", [{"workers": 2, "concurrency": 2, "env": HOLD}], indirect=True)
def test_9_both_streams_busy_first_group_retrying(run):
    run.admin.faults(latency_ms=700, error_burst=6, error_codes=[-114])
    run.enqueue("Dreams", 150, 0, "otp", priority="high")
    run.enqueue("Dreams", 300, 1000, "bulk")
    run.wait_done()
    assert_owned(run.result("9. high+normal busy, first calls -114, 0.7 s"))


@pytest.mark.parametrize("run", [{"env": HOLD}], indirect=True)
def test_10_isolating_refused_numbers_at_a_slow_provider(run):
    bad = nums(100)[5::10]
    run.admin.refuse({n: -117 for n in bad})
    run.admin.faults(latency_ms=250)
    run.enqueue("Dreams", 100, 0, "isolate")
    run.wait_done()
    row = run.result("10. 10 refused numbers in 100, 0.25 s per call")
    assert (row["duplicates"], row["held_unknown"], row["lost"]) == (0, 0, 0), row
    assert (row["accepted_once"], row["failed_with_code"], row["counted_sent"]) == (90, 10, 90)


@pytest.mark.parametrize("run", [{"workers": 2, "concurrency": 2,
                                  "env": {**HOLD, "DREAMS_RETRY_MAX_WAIT": "2",
                                          "DREAMS_RETRY_ATTEMPTS": "8"}}], indirect=True)
def test_11_workers_killed_during_backoff(run):
    run.admin.faults(error_rate=1.0, error_codes=[-114, -118])
    run.enqueue("Dreams", 600, 0, "backoff")
    refused = lambda: sum(run.admin.stats()["answers"].get("sendsms_multi", {}).get(c, 0)  # noqa: E731
                          for c in ("-114", "-118"))
    wait_for(lambda: refused() >= 12, 60, "workers in backoff", run.stack)
    for i, w in enumerate(run.stack.workers):
        if w.alive():
            run.stack.kill_worker(i)
    run.admin.faults(error_rate=0.0)
    run.stack.start_worker()
    run.wait_done()
    assert_owned(run.result("11. workers SIGKILLed in -114/-118 backoff"))


@pytest.mark.parametrize("run", [{"env": HOLD}], indirect=True)
def test_12_two_operators_resend_held_messages_at_once(run):
    import subprocess
    import sys

    run.admin.faults(hang_rate=1.0, hang_s=3)  # no answer, nothing accepted: held
    cid = run.enqueue("Dreams", 40, 0, "held")
    wait_for(lambda: run.p.campaign_status(cid).unknown == 40, 60, "40 held", run.stack)
    run.admin.faults(hang_rate=0.0)
    cmd = [sys.executable, "-m", "dreams_sms", "held", "resend", "--all"]
    procs = [subprocess.Popen(cmd, env=run.stack.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    queued = sum(int(o.split()[0]) for o in outs if "queued again" in o)
    assert queued == 40, outs
    run.wait_done()
    st = run.p.campaign_status(cid)
    assert (st.unknown, st.sent) == (0, 40)
    assert_owned(run.result("12. two concurrent `held resend --all`"))


@pytest.mark.parametrize("run", [{"env": {**HOLD, "DREAMS_MULTI_FORMAT": "object"}}],
                         indirect=True)
def test_13_object_format_with_a_number_twice(run):
    numbers = nums(150)
    rows = [(n, f"otp {k} for {n}") for n in numbers for k in (1, 2)]
    run.enqueue_rows("Dreams", rows)
    run.wait_done()
    assert_owned(run.result("13. object format, every number twice"))


@pytest.mark.parametrize("run", [{"env": {**HOLD, "DREAMS_DAILY_LIMITS": "Promo=150"}}],
                         indirect=True)
def test_14_a_pass_crossing_midnight(run):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    run.admin.sender("Promo", daily_limit=150)  # the provider refuses a 151st with -123
    now = run.p.control.now()
    offset = next_midnight(now, run.p.settings.tz) - now - 2.5
    run.p.control.set_clock_offset(offset)
    run.admin.clock(offset)
    run.admin.faults(latency_ms=1000, error_burst=2, error_codes=[-114])
    run.enqueue("Promo", 250, 0, "midnight")  # 150 on each side of midnight at most
    wait_for(lambda: run.accepted() >= 150, 60, "a day's worth", run.stack)
    time.sleep(3)  # whatever the new day's quota still allows
    offset += 86_400  # and the day after, for the rest
    run.p.control.set_clock_offset(offset)
    run.admin.clock(offset)
    run.wait_done()
    answers = run.admin.stats()["answers"].get("sendsms_multi", {})
    assert answers.get("-123", 0) == 0, answers  # never over the provider's day
    riyadh = ZoneInfo("Asia/Riyadh")
    per_day = Counter(datetime.fromtimestamp(m["time"], riyadh).date()
                      for m in run.admin.messages())
    assert max(per_day.values()) <= 150, per_day
    assert_owned(run.result("14. a retried pass crossing Riyadh midnight"))


@pytest.mark.parametrize("run", [{"workers": 2, "concurrency": 2, "env": HOLD}], indirect=True)
def test_15_429_then_503_windows(run):
    # The windows open with the campaign: at this speed it would otherwise be done first.
    run.admin.faults(latency_ms=10, refuse_rate=1.0, refuse_retry_after=1)
    run.enqueue("Dreams", 3000, 0, "windows")
    time.sleep(3)
    run.admin.faults(latency_ms=10, refuse_rate=0.0, http5xx_rate=1.0)
    time.sleep(3)
    run.admin.faults(latency_ms=10, http5xx_rate=0.0)
    run.wait_done()
    answers = run.admin.stats()["answers"]["sendsms_multi"]
    assert answers.get("http_429", 0) > 0, answers
    assert sum(answers.get(f"http_{c}", 0) for c in (500, 502, 503)) > 0, answers
    assert run.p.control.pauses() == {}
    assert_owned(run.result("15. 429 for 3 s, then 503 for 3 s"))


# -- Redis failover (Sentinel) ------------------------------------------------------
# A master, a replica behind a relay that can be frozen and three sentinels, all
# real processes; workers, beat and producer told only the sentinel:// URL.

@pytest.fixture
def failover() -> Iterator[tuple[Run, SentinelSet]]:
    sentinels = SentinelSet(password="redis-pw", sentinel_password="sentinel-pw").start()
    stack = make_stack(redis_url=sentinels.url, workers=2, concurrency=2,
                       env={**sentinels.env(), **HOLD})
    try:
        stack.start()
        yield Run(stack), sentinels
    finally:
        stack.stop()
        sentinels.close()


IN_FLIGHT = 2 * 2 * 2 * 100


def settle_held_by_record(run: Run) -> int:
    """The documented operator step for held messages: look each up at the provider
    (here the sandbox's record), then `held delivered` or `held resend` it."""
    held = run.p.store.held(limit=10**6)
    accepted = {(m["to"], m["text"]) for m in run.admin.messages()}
    delivered = [j.id for j in held if (j.to, j.text) in accepted]
    resend = [j.id for j in held if (j.to, j.text) not in accepted]
    for verb, ids in (("delivered", delivered), ("resend", resend)):
        for i in range(0, len(ids), 200):
            out = subprocess.run([sys.executable, "-m", "dreams_sms", "held", verb,
                                  *ids[i:i + 200]], env=run.stack.env(), capture_output=True,
                                 text=True, timeout=60)
            assert out.returncode == 0, out.stdout + out.stderr
    return len(held)


def assert_rode_through(run: Run) -> None:
    """No process was restarted: beat and both workers lived through the failover."""
    assert "beat exited" not in (run.stack.dir / "beat.log").read_text(), run.stack.logs()
    assert all(w.alive() for w in run.stack.workers), run.stack.logs()


def test_16_master_killed_mid_campaign(failover):
    run, sentinels = failover
    run.admin.faults(latency_ms=50)
    run.enqueue("Dreams", 10_000, 0, "failover")
    wait_for(lambda: run.accepted() >= 3000, 120, "3000 accepted", run.stack)
    sentinels.kill_master()
    sentinels.wait_promoted()
    wait_for(lambda: run.accepted() >= 9000 or run.done(), 180, "sending to resume", run.stack)
    run.wait_done()
    held = settle_held_by_record(run)
    run.wait_done()
    # At most the calls in flight, and each chain's last outcome not yet written
    # (it rides in the next take): 2 workers x 2 processes x 2 batches of 100.
    assert held <= IN_FLIGHT, held
    assert_rode_through(run)
    assert_owned(run.result(f"16. Sentinel: master SIGKILLed mid-campaign ({held} held)"))


def test_17_master_killed_while_the_replica_lags(failover):
    """The replica's link frozen for 1.5 s, then the master killed: every write of
    that window is lost. Leases no replica confirmed were never sent on; a producer
    whose chunks were not confirmed resumes on the new master."""
    run, sentinels = failover
    run.admin.faults(latency_ms=100)
    rows = [(x, f"lag {i}") for i, x in enumerate(nums(10_000, 200_000))]
    run.expected.update(("Dreams", x, t) for x, t in rows)
    paced = threading.Event()
    paced.set()
    interrupted: list[BulkInterrupted] = []
    cid = ["lag"]

    def slowly() -> Iterator[tuple[str, str]]:  # half at once (calls in flight), half paced
        for i, row in enumerate(rows):
            if paced.is_set() and i >= 5000 and i % 250 == 0:
                time.sleep(0.2)
            yield row

    def produce() -> None:
        resume = False
        while True:
            try:
                run.p.send_bulk("Dreams", slowly(), campaign=cid[0], resume=resume)
                return
            except BulkInterrupted as exc:
                interrupted.append(exc)
            except redis.RedisError:
                pass  # no master yet: try again
            resume = True
            time.sleep(0.3)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    run.cids.append(cid[0])
    wait_for(lambda: run.accepted() >= 1500, 120, "1500 accepted", run.stack)
    sentinels.relay.freeze()
    time.sleep(1.5)
    sentinels.kill_master()
    sentinels.wait_promoted()
    sentinels.relay.close()
    paced.clear()
    producer.join(120)
    assert not producer.is_alive()
    assert interrupted, "the producer never heard that a chunk was not kept"
    print(f"\nproducer interrupted {len(interrupted)} times; "
          f"committed: {[e.committed for e in interrupted]}")
    run.wait_done()
    held = settle_held_by_record(run)
    run.wait_done()
    assert held <= IN_FLIGHT, held
    assert_rode_through(run)
    assert_owned(run.result(f"17. Sentinel: master SIGKILLed, replica 1.5 s behind "
                            f"({held} held)"))


def test_18_master_frozen_then_back_as_a_replica(failover):
    """The master stops answering (SIGSTOP) but does not die: Sentinel promotes the
    replica; the old master wakes 8 s later, still taking writes for a moment from
    the clients that waited on it, until the sentinels turn it into a replica."""
    import os
    import signal

    run, sentinels = failover
    run.admin.faults(latency_ms=50)
    run.enqueue("Dreams", 10_000, 300_000, "frozen")
    wait_for(lambda: run.accepted() >= 3000, 120, "3000 accepted", run.stack)
    old = sentinels.master
    assert old.proc is not None
    os.kill(old.proc.pid, signal.SIGSTOP)
    try:
        sentinels.wait_promoted()
        time.sleep(6)
    finally:
        os.kill(old.proc.pid, signal.SIGCONT)
    SentinelSet._wait(lambda: sentinels.client(old).info("replication")["role"] == "slave",
                      "the old master to become a replica", 60)
    run.wait_done()
    held = settle_held_by_record(run)
    run.wait_done()
    assert held <= IN_FLIGHT, held
    assert_rode_through(run)
    assert_owned(run.result(f"18. Sentinel: master frozen 8 s, back as a replica ({held} held)"))
