"""End to end: real redis-server, real `celery worker` processes and beat, the
sandbox over HTTP. Each test ends by comparing the sandbox's record of what it
accepted with what was enqueued."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from e2e_helpers import (
    accepted_counter,
    check_exactly_once,
    nums,
    wait_for,
)

from dreams_sms.queue.quota import DailyQuota, next_midnight

pytestmark = pytest.mark.e2e


def campaign(p, sender, rows, expected, **kw):
    expected.update((sender, n, t) for n, t in rows)
    return p.send_bulk(sender, rows, **kw)


def done(p, *cids):
    return lambda: all(p.campaign_status(c).done for c in cids)


def test_10k_across_3_senders_exactly_once(stack, admin, p):
    expected = Counter()
    cids = []
    for k, sender in enumerate(("Dreams", "Alerts", "Promo")):
        n = 3334 if k < 2 else 3332
        rows = [
            (x, f"msg {k}-{i} مرحبا" if i % 3 == 0 else f"msg {k}-{i}")
            for i, x in enumerate(nums(n, k * 10_000))
        ]
        cids.append(campaign(p, sender, rows, expected))
    assert sum(expected.values()) == 10_000
    wait_for(done(p, *cids), 180, "campaigns to finish", stack)
    result = check_exactly_once(admin, expected)
    assert result == {"enqueued": 10_000, "accepted_once": 10_000, "lost": 0, "duplicates": 0}
    assert sum(p.campaign_status(c).sent for c in cids) == 10_000


def test_burst_of_114_118_is_retried(stack, admin, p):
    admin.faults(error_burst=12, error_codes=[-114, -118])
    expected = Counter()
    cid = campaign(p, "Dreams", [(x, f"burst {i}") for i, x in enumerate(nums(2000))], expected)
    wait_for(done(p, cid), 120, "burst campaign", stack)
    assert check_exactly_once(admin, expected)["accepted_once"] == 2000
    assert check_exactly_once(admin, expected)["duplicates"] == 0
    answers = admin.stats()["answers"]["sendsms_multi"]
    assert sum(v for k, v in answers.items() if k in ("-114", "-118")) == 12


def test_balance_runs_out_then_beat_resumes(stack, admin, p):
    admin.set_balance(1500)
    expected = Counter()
    cid = campaign(p, "Alerts", [(x, f"bal {i}") for i, x in enumerate(nums(4000))], expected)
    wait_for(lambda: p.control.paused() is not None, 60, "the -113 pause", stack)
    assert p.control.paused()["reason"] == "balance"
    time.sleep(1.5)
    stuck = admin.stats()["accepted"]
    assert stuck <= 1500
    time.sleep(1.5)
    assert admin.stats()["accepted"] == stuck, "sending went on while paused"
    admin.add_balance(10_000)
    wait_for(done(p, cid), 120, "resume after top-up", stack)
    assert p.control.paused() is None
    res = check_exactly_once(admin, expected)
    assert (res["accepted_once"], res["lost"], res["duplicates"]) == (4000, 0, 0)


def test_daily_limit_defers_to_after_riyadh_midnight(stack, admin, p):
    quota = DailyQuota(
        p.r, prefix=p.settings.prefix, tz=p.settings.tz, default_limit=p.settings.limit_for
    )
    quota.set_limit("Promo", 300)
    expected = Counter()
    promo = campaign(p, "Promo", [(x, f"lim {i}") for i, x in enumerate(nums(500))], expected)
    other = campaign(p, "Alerts", [(x, f"other {i}") for i, x in enumerate(nums(400))], expected)
    wait_for(done(p, other), 60, "the other sender", stack)
    wait_for(lambda: p.campaign_status(promo).closed_today, 60, "Promo closed", stack)
    time.sleep(2)
    got = accepted_counter(admin)
    assert sum(v for (s, _, _), v in got.items() if s == "Promo") == 300
    st = p.campaign_status(promo)
    assert (st.sent, st.deferred) == (300, 200)
    now = p.control.now()
    p.control.set_clock_offset(next_midnight(now, p.settings.tz) - now + 5)
    wait_for(done(p, promo), 60, "Promo after midnight", stack)
    res = check_exactly_once(admin, expected)
    assert (res["accepted_once"], res["lost"], res["duplicates"]) == (900, 0, 0)


def test_refused_numbers_isolated_inside_batches(stack, admin, p):
    numbers = nums(1000, 500_000)
    bad = {numbers[i]: (-117 if k % 2 else -122) for k, i in enumerate((3, 150, 151, 420, 999))}
    admin.refuse(bad)
    expected = Counter()
    rows = [(x, f"iso {i}") for i, x in enumerate(numbers)]
    cid = campaign(p, "Dreams", rows, expected)
    wait_for(done(p, cid), 120, "isolation campaign", stack)
    st = p.campaign_status(cid)
    assert st.failed == 5 and st.sent == 995
    assert st.failures == {-117: 2, -122: 3}
    got = accepted_counter(admin)
    for number in bad:
        assert not any(k[1] == number for k in got)
    assert sum(got.values()) == 995 and max(got.values()) == 1
    calls = admin.stats()["calls"]["sendsms_multi"]
    print(
        f"\nisolating 5 refused numbers in 1000 messages took {calls} sendsms_multi calls "
        f"({calls - 10} beyond the 10 plain batches)"
    )


def test_high_priority_overtakes_50k_campaign(stack, admin, p):
    rows = [(x, f"bulk {i}") for i, x in enumerate(nums(50_000, 1_000_000))]
    cid = p.send_bulk("Dreams", rows)
    wait_for(lambda: admin.stats()["accepted"] >= 1000, 60, "the campaign to flow", stack)
    try:
        before = admin.stats()["accepted"]
        mid = p.send("0551234567", "OTP 4821", "Dreams", priority="high")
        wait_for(lambda: p.status(mid).state == "sent", 30, "the OTP", stack, every=0.05)
        msgs = admin.messages(sender="Dreams")
        position = next(m["id"] for m in msgs if m["text"] == "OTP 4821")
        ahead = position - before - 1  # record ids count from 1; the OTP is not ahead of itself
        print(f"\nOTP accepted after {ahead} campaign messages ({ahead / 100:.1f} batches)")
        # In flight when it was queued: one batch per worker slot (2); then the next batch.
        assert ahead <= 2 * 100 + 2 * 100
        assert p.campaign_status(cid).sent > 0
    finally:  # whatever happened, leave the shared stack clean for the next test
        p.pause()
        # Calls in flight finish first (their leases go), so none lands in the next test.
        wait_for(lambda: p.r.hlen(p.keys.lease("Dreams")) == 0, 30, "calls in flight", stack)
        p.r.delete(*p.keys.streams("Dreams"))  # drop the rest of this big campaign
        p.control.resume()


def test_expiry_during_balance_pause(stack, admin, p):
    admin.set_balance(0)
    mid = p.send("0551234567", "OTP 1111 valid 2s", "Alerts", expires_in=2)
    wait_for(lambda: p.control.paused() is not None, 30, "the balance pause", stack)
    time.sleep(2.5)
    admin.set_balance(1000)
    wait_for(lambda: p.status(mid).state != "queued", 30, "the OTP to settle", stack)
    assert p.status(mid).state == "expired"
    assert admin.stats()["accepted"] == 0


def test_sigkill_worker_mid_campaign(stack, admin, p):
    expected = Counter()
    admin.faults(latency_ms=20)
    cid = campaign(
        p, "Promo", [(x, f"kill {i}") for i, x in enumerate(nums(6000, 70_000))], expected
    )
    wait_for(lambda: admin.stats()["accepted"] >= 1000, 60, "sending to start", stack)
    stack.kill_worker(0)
    stack.start_worker()
    wait_for(done(p, cid), 180, "the campaign after SIGKILL", stack)
    res = check_exactly_once(admin, expected)
    assert (res["accepted_once"], res["lost"], res["duplicates"]) == (6000, 0, 0)
