"""DailyQuota against the private redis-server: exactness, midnight, overrides."""

from __future__ import annotations

import multiprocessing as mp
import random
import time
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import pytest
import redis

from dreams_sms.queue.quota import GRACE_SECONDS, DailyQuota, local_day, next_midnight

RIYADH = ZoneInfo("Asia/Riyadh")
PREFIX = "t"
SENDER = "DREAMS"


def epoch(text: str, tz: tzinfo) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def make(client: redis.Redis, default: int = 100) -> DailyQuota:
    return DailyQuota(client, prefix=PREFIX, tz=RIYADH, default_limit=lambda _s: default)


def upcoming_riyadh_midnight() -> float:
    """A real, future midnight: EXPIREAT must not land in the server's past."""
    return next_midnight(time.time(), RIYADH)


# -- pure helpers --------------------------------------------------------------


def test_local_day_riyadh():
    midnight = epoch("2025-05-31 21:00", UTC)  # 2025-06-01 00:00 +03
    assert local_day(midnight - 1, RIYADH) == "20250531"
    assert local_day(midnight, RIYADH) == "20250601"
    assert next_midnight(epoch("2025-05-31 12:00", RIYADH), RIYADH) == midnight
    assert next_midnight(midnight - 0.001, RIYADH) == midnight
    assert next_midnight(midnight, RIYADH) == midnight + 86400


@pytest.mark.parametrize(
    ("zone", "start", "expected_utc", "hours"),
    [
        # Spring forward: the day is 23 h long.
        ("Europe/Berlin", "2025-03-30 00:00", "2025-03-30 22:00", 23),
        ("America/New_York", "2025-03-09 00:00", "2025-03-10 04:00", 23),
        # Fall back: 25 h.
        ("Europe/Berlin", "2025-10-26 00:00", "2025-10-26 23:00", 25),
        ("America/New_York", "2025-11-02 00:00", "2025-11-03 05:00", 25),
        # No DST.
        ("Asia/Riyadh", "2025-03-30 00:00", "2025-03-30 21:00", 24),
    ],
)
def test_next_midnight_across_dst(zone, start, expected_utc, hours):
    tz = ZoneInfo(zone)
    day_start = epoch(start, tz)
    m = next_midnight(day_start, tz)
    assert m == epoch(expected_utc, UTC)
    assert m - day_start == hours * 3600
    # Every instant of that day points at the same midnight, including the repeated hour.
    for ts in (day_start + 1, day_start + 2.5 * 3600, m - 1):
        assert next_midnight(ts, tz) == m
        assert local_day(ts, tz) == local_day(day_start, tz)
    assert local_day(m, tz) != local_day(m - 1, tz)


def test_next_midnight_in_repeated_hour():
    ny = ZoneInfo("America/New_York")
    second_130 = epoch("2025-11-02 06:30", UTC)  # 01:30 EST, the second 01:30
    assert datetime.fromtimestamp(second_130, ny).fold == 1
    assert next_midnight(second_130, ny) == epoch("2025-11-03 05:00", UTC)


@pytest.mark.parametrize(
    "zone", ["Asia/Riyadh", "Europe/Berlin", "America/New_York", "America/Santiago", "Asia/Beirut"]
)
def test_next_midnight_is_first_instant_of_next_day(zone):
    """Hourly over a year, including zones whose midnight is skipped or repeated."""
    tz = ZoneInfo(zone)
    ts = epoch("2024-01-01 00:30", UTC)
    for _ in range(366 * 24):
        m = next_midnight(ts, tz)
        assert ts < m <= ts + 25 * 3600
        assert local_day(m - 0.001, tz) == local_day(ts, tz)
        assert local_day(m, tz) > local_day(ts, tz)
        ts += 3600


# -- keys and TTLs -------------------------------------------------------------


def test_keys_carry_hash_tag_and_expire_after_local_midnight(r):
    q = make(r)
    m = upcoming_riyadh_midnight()
    before, after = m - 0.5, m + 0.5
    assert q.reserve(SENDER, 5, before) == 5
    q.close_for_today(SENDER, before)
    day = local_day(before, RIYADH)
    counter, closed = f"t:quota:{{DREAMS}}:{day}", f"t:closed:{{DREAMS}}:{day}"
    assert q.counter_key(SENDER, before) == counter
    assert q.closed_key(SENDER, before) == closed
    assert r.expiretime(counter) == int(m) + GRACE_SECONDS
    assert r.expiretime(closed) == int(m) + GRACE_SECONDS
    assert q.reserve(SENDER, 1, after) == 1
    assert r.expiretime(q.counter_key(SENDER, after)) == int(m) + 86400 + GRACE_SECONDS


def test_stale_now_cannot_make_keys_vanish(r):
    """A clock in the past would EXPIREAT into the past; keys still live an hour."""
    q = make(r)
    old = epoch("2020-01-01 12:00", RIYADH)
    assert q.reserve(SENDER, 7, old) == 7
    q.close_for_today(SENDER, old)
    assert q.used(SENDER, old) == 7
    assert q.is_closed(SENDER, old)
    for key in (q.counter_key(SENDER, old), q.closed_key(SENDER, old)):
        assert 3000 < r.ttl(key) <= 3600


# -- midnight ------------------------------------------------------------------


def test_quota_reopens_at_riyadh_midnight(r):
    q = make(r, default=100)
    m = upcoming_riyadh_midnight()
    before, after = m - 0.5, m
    assert q.counter_key(SENDER, before) != q.counter_key(SENDER, after)
    assert q.reserve(SENDER, 80, before) == 80
    assert q.reserve(SENDER, 80, before) == 20
    assert q.reserve(SENDER, 1, before) == 0
    assert q.is_closed(SENDER, before)
    assert not q.is_closed(SENDER, after)
    assert q.reserve(SENDER, 30, after) == 30
    assert q.used(SENDER, before) == 100
    assert q.used(SENDER, after) == 30
    assert q.reopens_at(before) == m
    assert q.reopens_at(after) == m + 86400


def test_close_for_today_until_next_local_midnight(r):
    q = make(r, default=0)  # unlimited: only the provider's word closes it
    m = upcoming_riyadh_midnight()
    noon = m - 12 * 3600
    assert q.reserve(SENDER, 10, noon) == 10
    assert not q.is_closed(SENDER, noon)
    q.close_for_today(SENDER, noon)
    for ts in (noon, noon + 3600, m - 0.001):
        assert q.is_closed(SENDER, ts)
        assert q.reserve(SENDER, 1, ts) == 0
    assert q.used(SENDER, noon) == 10
    assert not q.is_closed(SENDER, m)
    assert q.reserve(SENDER, 5, m) == 5
    assert not q.is_closed("OTHER", noon)


# -- counting semantics --------------------------------------------------------


def test_refund_never_below_zero(r):
    q = make(r)
    now = time.time()
    assert q.refund(SENDER, 5, now) == 0
    assert not r.exists(q.counter_key(SENDER, now))  # no immortal key created
    assert q.reserve(SENDER, 5, now) == 5
    assert q.refund(SENDER, 3, now) == 3
    assert q.refund(SENDER, 10, now) == 2
    assert q.used(SENDER, now) == 0
    assert r.ttl(q.counter_key(SENDER, now)) > 0  # DECRBY keeps the expiry


def test_override_beats_default(r):
    q = make(r, default=100)
    now = time.time()
    assert q.limit(SENDER) == 100
    q.set_limit(SENDER, 3)
    assert q.limit(SENDER) == 3
    assert make(r, default=100).limit(SENDER) == 3  # shared by every instance
    assert q.reserve(SENDER, 10, now) == 3
    assert q.is_closed(SENDER, now)
    q.set_limit(SENDER, None)
    assert q.limit(SENDER) == 100
    assert not q.is_closed(SENDER, now)
    assert q.reserve(SENDER, 10, now) == 10
    q.set_limit(SENDER, "none")
    assert q.limit(SENDER) is None
    assert q.reserve(SENDER, 1000, now) == 1000
    q.set_limit(SENDER, 0)  # an operator's 0 stops the sender: it is not "no limit"
    assert q.reserve(SENDER, 1, now) == 0
    assert q.is_closed(SENDER, now)


def test_limit_zero_counts_but_never_refuses(r):
    q = make(r, default=0)
    now = time.time()
    for _ in range(3):
        assert q.reserve(SENDER, 1_000_000, now) == 1_000_000
    assert q.used(SENDER, now) == 3_000_000
    assert not q.is_closed(SENDER, now)


def test_usage_table(r):
    q = DailyQuota(r, prefix=PREFIX, tz=RIYADH, default_limit=lambda s: {"A": 10}.get(s, 50))
    now = time.time()
    q.reserve("A", 4, now)
    q.set_limit("B", 7)
    q.reserve("B", 9, now)
    assert q.usage(["A", "B", "C"], now) == {"A": (4, 10), "B": (7, 7), "C": (0, 50)}
    q.seed(0, {"A": 3})
    assert q.usage(["A", "C"], now) == {"A": (4, 3), "C": (0, None)}
    assert q.usage([], now) == {}


def test_bytes_client(redis_url):
    client = redis.Redis.from_url(redis_url)  # decode_responses=False
    q = make(client, default=10)
    now = time.time()
    q.set_limit(SENDER, 4)
    assert q.reserve(SENDER, 9, now) == 4
    assert q.used(SENDER, now) == 4
    assert q.is_closed(SENDER, now)
    assert q.usage([SENDER], now) == {SENDER: (4, 4)}
    client.close()


def test_rejects_bad_input(r):
    q = make(r)
    now = time.time()
    assert q.reserve(SENDER, 0, now) == 0
    with pytest.raises(ValueError):
        q.reserve(SENDER, -1, now)
    with pytest.raises(ValueError):
        q.refund(SENDER, -1, now)
    with pytest.raises(ValueError):
        q.set_limit(SENDER, -5)
    for bad in ("", "A}B", "{A"):
        with pytest.raises(ValueError):
            q.reserve(bad, 1, now)


# -- exactness under contention ------------------------------------------------

LIMIT = 10_000
WORKERS = 8
ROUNDS = 500


def _contend(url: str, seed: int, now: float, barrier, results) -> None:
    """One worker process: random reserves with partial refunds, then drain."""
    try:
        client = redis.Redis.from_url(url, decode_responses=True)
        q = DailyQuota(client, prefix=PREFIX, tz=RIYADH, default_limit=lambda _s: LIMIT)
        rng = random.Random(seed)
        granted = refunded = short = peak = 0
        barrier.wait()
        for _ in range(ROUNDS):
            grant = q.reserve(SENDER, rng.randint(1, 50), now)
            granted += grant
            if grant and rng.random() < 0.3:
                back = rng.randint(1, grant)
                took = q.refund(SENDER, back, now)
                refunded += took
                short += back - took
            peak = max(peak, q.used(SENDER, now))
        # Phase 2, reserves only: nothing refunds after this barrier, so the
        # first refusal means the counter sits exactly at the limit.
        barrier.wait()
        while grant := q.reserve(SENDER, rng.randint(1, 50), now):
            granted += grant
        results.put(("ok", granted, refunded, short, peak))
        client.close()
    except Exception as exc:  # surface it to the parent instead of hanging it
        results.put(("error", repr(exc)))
        barrier.abort()


def test_exact_under_contention(redis_url, r):
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    now = time.time()
    procs = [
        ctx.Process(target=_contend, args=(redis_url, seed, now, barrier, results))
        for seed in range(WORKERS)
    ]
    for p in procs:
        p.start()
    try:
        outcomes = [results.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    errors = [o for o in outcomes if o[0] != "ok"]
    assert not errors, errors
    granted = sum(o[1] for o in outcomes)
    refunded = sum(o[2] for o in outcomes)
    assert sum(o[3] for o in outcomes) == 0  # every refund was honoured in full
    assert max(o[4] for o in outcomes) <= LIMIT  # never over the limit mid-run
    assert granted - refunded == LIMIT
    q = make(r, default=LIMIT)
    assert q.used(SENDER, now) == LIMIT
    assert int(r.get(q.counter_key(SENDER, now))) == LIMIT
    print(
        f"contention: granted={granted} refunded={refunded} net={granted - refunded} "
        f"limit={LIMIT} counter={q.used(SENDER, now)}"
    )


def test_script_survives_script_flush(r):
    """A Redis restart or SCRIPT FLUSH drops cached scripts; EVALSHA must fall back."""
    q = make(r)
    now = time.time()
    r.script_flush()
    assert q.reserve(SENDER, 1, now) == 1
    assert q.refund(SENDER, 1, now) == 1
    assert r.script_exists(q._reserve.sha) == [True]
