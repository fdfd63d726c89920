"""One owner per job: the lease scripts and the drain under slow calls, crashes,
retries, midnight and operators (a real Redis, a fake provider, real threads)."""

from __future__ import annotations

import threading
import time

import pytest
from fakes import FakeApp, FakeProvider, drain_all, numbers

from dreams_sms.config import Settings
from dreams_sms.errors import ProviderError
from dreams_sms.producer import Producer
from dreams_sms.queue import fields as cf
from dreams_sms.queue.jobs import SENT
from dreams_sms.queue.keys import GROUP
from dreams_sms.queue.lease import Leases, Outcome
from dreams_sms.queue.quota import DailyQuota, next_midnight
from dreams_sms.queue.store import Owner
from dreams_sms.worker.drain import Drainer


class Killed(BaseException):
    """A worker process dying where it stands (not an Exception: nothing catches it)."""


@pytest.fixture
def settings(redis_url):
    return Settings(redis_url=redis_url, batch_wait=0.0, claim_idle=0.2, retry_attempts=3,
                    retry_max_wait=0.01, test_clock=True)


@pytest.fixture
def producer(settings):
    return Producer(settings, app=FakeApp())



def drainer(settings, provider, consumer="c1", sleep=lambda s: None, **kw):
    p = Producer(settings, app=FakeApp())
    return Drainer(r=p.r, settings=settings, provider=provider, consumer=consumer,
                   sleep=sleep, **kw)



def leases(producer, consumer, seconds=5.0):
    s = producer.settings
    return Leases(producer.r, producer.keys, consumer, tz=s.tz, lease_seconds=seconds,
                  test_clock=True)


def assert_once(provider, n):
    assert len(provider.accepted) == len(set(provider.accepted)) == n, (
        len(provider.accepted), len(set(provider.accepted)))


# -- the lease script ------------------------------------------------------------------

def test_concurrent_takers_get_disjoint_calls(producer):
    producer.send_bulk("Dreams", [(n, "x") for n in numbers(250)])
    got: dict[str, list[str]] = {}

    def take(name):
        got[name] = [j.id for j in leases(producer, name).take("Dreams", 100, name).send]

    threads = [threading.Thread(target=take, args=(f"c{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for v in got.values() for i in v]
    assert sorted(len(v) for v in got.values()) == [50, 100, 100]
    assert len(ids) == len(set(ids)) == 250


def test_a_live_holder_keeps_its_jobs_even_when_its_entries_are_claimed(producer):
    producer.send_bulk("Dreams", [(n, "x") for n in numbers(10)])
    first = leases(producer, "c1", seconds=5.0).take("Dreams", 100, "t1")
    assert len(first.send) == 10
    time.sleep(0.01)
    other = leases(producer, "c2").take("Dreams", 100, "t2", claim_ms=1)
    assert other.send == [] and other.unknown == []  # claimed the entries, not the jobs


def test_an_expired_lease_is_unknown_never_resent(producer):
    producer.send_bulk("Dreams", [(n, "x") for n in numbers(10)])
    leases(producer, "c1", seconds=0.05).take("Dreams", 100, "t1")
    time.sleep(0.1)
    taken = leases(producer, "c2").take("Dreams", 100, "t2", claim_ms=1)
    assert taken.send == [] and len(taken.unknown) == 10
    assert all(t0 > 0 for _, t0 in taken.unknown)


def test_a_stale_owner_cannot_write_an_outcome(producer):
    cid = producer.send_bulk("Dreams", [(n, "x") for n in numbers(10)])
    stale = leases(producer, "c1", seconds=0.05).take("Dreams", 100, "t1").send
    time.sleep(0.1)
    fresh = leases(producer, "c2").take("Dreams", 100, "t2", claim_ms=1)
    refused = producer.store.finish(stale, SENT, Owner("c1", "t1"))
    assert sorted(refused) == sorted(j.id for j in stale)
    assert producer.campaign_status(cid).sent == 0
    jobs = [j for j, _ in fresh.unknown]
    assert producer.store.finish(jobs, SENT, Owner("c2", "t2")) == []
    assert producer.campaign_status(cid).sent == 10
    assert producer.r.hlen(producer.keys.lease("Dreams")) == 0


def test_released_jobs_cannot_be_taken_back_once_claimed(producer):
    producer.send_bulk("Dreams", [(n, "x") for n in numbers(5)])
    mine = leases(producer, "c1")
    jobs = mine.take("Dreams", 100, "t1").send
    assert mine.release("Dreams", "t1", jobs) == 5  # a certain refusal: not sent
    time.sleep(0.01)
    thief = leases(producer, "c2").take("Dreams", 100, "t2", claim_ms=1)
    assert len(thief.send) == 5  # free jobs: safe to send
    again, _ = mine.retake("Dreams", "t1", jobs)
    assert again == []


def test_one_message_twice_in_a_stream_is_sent_once(settings, producer):
    mid = producer.send("0551234567", "otp", "Dreams")
    job = producer.store.r.xrange(producer.keys.stream("Dreams"))[0][1]
    producer.r.xadd(producer.keys.stream("Dreams"), job)  # the same message id again
    provider = FakeProvider()
    drain_all(drainer(settings, provider), "Dreams")
    assert_once(provider, 1)
    assert producer.status(mid).state == "sent"


# -- the drain ---------------------------------------------------------------------------

def test_slow_calls_with_two_workers_send_each_job_once(settings, producer):
    """Calls four times longer than the takeover timer; a second worker polls all along."""
    s = settings.with_(claim_idle=0.2)
    cid = producer.send_bulk("Dreams", [(n, f"m{i}") for i, n in enumerate(numbers(300))])
    provider = FakeProvider(latency=0.8)
    errors: list[BaseException] = []

    def work(name):
        try:
            d = drainer(s, provider, consumer=name, sleep=time.sleep)
            d._claim_due = {}
            for _ in range(200):
                if d.drain_once("Dreams").stop == "empty" and \
                        producer.campaign_status(cid).done:
                    return
                d._claim_due["Dreams"] = 0.0  # look for takeovers on every pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert_once(provider, 300)
    st = producer.campaign_status(cid)
    assert (st.sent, st.unknown, st.queued) == (300, 0, 0)


def test_invitations_go_one_call_at_a_time_and_hold_nothing_else(settings, producer):
    url = "https://maps.google.com/?q=1"
    ids = [producer.send(n, "meet", "Dreams", location_url=url) for n in numbers(5)]
    provider = FakeProvider()
    d = drainer(settings, provider)
    d.drain_once("Dreams")
    assert provider.calls == 1
    # Only the invitation on the wire was taken; the others stay free for any worker.
    assert producer.r.hlen(producer.keys.lease("Dreams")) == 0
    assert producer.r.xpending(producer.keys.stream("Dreams"), GROUP)["pending"] == 0
    assert d.hand_back("Dreams") == 0
    drain_all(d, "Dreams")
    assert_once(provider, 5)
    assert all(producer.status(i).state == "sent" for i in ids)


def test_a_certain_refusal_releases_the_lease_before_backoff(settings, producer):
    producer.send_bulk("Dreams", [(n, "x") for n in numbers(20)])
    provider = FakeProvider()
    provider.fail_next = [ProviderError("sendsms_multi", -114)]
    seen: list[int] = []

    def sleep(_):
        seen.append(producer.r.hlen(producer.keys.lease("Dreams")))

    drain_all(drainer(settings, provider, sleep=sleep), "Dreams")
    assert seen == [0]
    assert_once(provider, 20)


def test_killed_during_backoff_means_a_safe_resend_not_a_held_job(settings, producer):
    cid = producer.send_bulk("Dreams", [(n, "x") for n in numbers(30)])
    provider = FakeProvider()
    provider.fail_next = [ProviderError("sendsms_multi", -118)]

    def die(_):
        raise Killed

    with pytest.raises(Killed):
        drainer(settings, provider, consumer="dead", sleep=die).drain_once("Dreams")
    time.sleep(settings.claim_idle + 0.05)
    drain_all(drainer(settings, provider, consumer="alive"), "Dreams")
    assert_once(provider, 30)
    st = producer.campaign_status(cid)
    assert (st.sent, st.unknown) == (30, 0)


def test_object_format_never_carries_a_number_twice(settings, producer):
    s = settings.with_(multi_format="object")
    rows = [("0551234567", "first"), ("0551234568", "other"), ("0551234567", "second")]
    cid = producer.send_bulk("Dreams", rows)
    provider = FakeProvider(shape="object")
    drain_all(drainer(s, provider), "Dreams")
    assert_once(provider, 3)
    assert provider.calls == 2
    assert producer.campaign_status(cid).sent == 3


def test_expiry_is_checked_before_each_attempt(settings, producer):
    mid = producer.send("0551234567", "otp", "Dreams", expires_in=30)
    provider = FakeProvider()
    provider.fail_next = [ProviderError("sendsms_multi", -114)]

    def sleep(_):  # the backoff outlasts the message's life
        producer.control.set_clock_offset(60)

    drain_all(drainer(settings, provider, sleep=sleep), "Dreams")
    assert provider.accepted == []
    assert producer.status(mid).state == "expired"


def test_a_call_after_midnight_counts_on_the_new_day(settings, producer):
    s = settings.with_(daily_limits={"Promo": 150})
    now = producer.control.now()
    midnight = next_midnight(now, s.tz)
    producer.control.set_clock_offset(midnight - now - 1)  # one second before midnight
    producer.send_bulk("Promo", [(n, "x") for n in numbers(100)])
    provider = FakeProvider()
    provider.fail_next = [ProviderError("sendsms_multi", -114)]

    def sleep(_):  # the retry goes out after midnight
        producer.control.set_clock_offset(midnight - now + 1)

    drain_all(drainer(s, provider, sleep=sleep), "Promo")
    quota = DailyQuota(producer.r, prefix=s.prefix, tz=s.tz)
    assert quota.used("Promo", midnight - 10) == 0
    assert quota.used("Promo", midnight + 10) == 100
    assert_once(provider, 100)


def test_limits_are_one_table_for_every_worker(settings, producer):
    producer.send_bulk("Promo", [(n, "x") for n in numbers(300)])
    provider = FakeProvider()
    drainer(settings.with_(daily_limits={"Promo": 120}), provider, consumer="a")
    late = drainer(settings.with_(daily_limits={"Promo": 50}), provider, consumer="b")
    assert drain_all(late, "Promo").stop == "closed"
    assert len(provider.accepted) == 50  # the table both read: the last one seeded
    reader = DailyQuota(producer.r, prefix=settings.prefix, tz=settings.tz)
    assert reader.limit("Promo") == 50  # what a CLI started without the variable sees


# -- a folded outcome: written by the next take ---------------------------------------

def test_a_folded_outcome_is_written_by_the_next_take(settings, producer):
    cid = producer.send_bulk("Dreams", [(n, "x") for n in numbers(250)])
    provider = FakeProvider()
    d = drainer(settings.with_(claim_idle=30.0), provider)
    lease = producer.keys.lease("Dreams")
    first = d.drain_once("Dreams", fold=True)
    assert provider.calls == 1 and first.sent == 0  # sent, not yet written: still leased
    assert producer.campaign_status(cid).sent == 0 and producer.r.hlen(lease) == 100
    second = d.drain_once("Dreams", fold=True)  # its take writes the first call's outcome
    assert second.sent == 100 and producer.campaign_status(cid).sent == 100
    assert producer.r.hlen(lease) == 100  # the second call's jobs
    d.drain_once("Dreams", fold=True)
    assert d.drain_once("Dreams", fold=True).stop == "empty"
    assert d.flush_outcomes("Dreams") == 0  # the empty take wrote the last one
    assert_once(provider, 250)
    st = producer.campaign_status(cid)
    assert (st.sent, st.queued, st.unknown) == (250, 0, 0)
    assert producer.r.hlen(lease) == 0 and producer.r.xlen(producer.keys.stream("Dreams")) == 0
    assert d.heartbeat._held == {}  # nothing left to renew


def test_a_chain_writes_its_last_outcome_before_it_hands_over(settings, producer):
    from dreams_sms.worker.chain import Chain

    cid = producer.send_bulk("Dreams", [(n, "x") for n in numbers(150)])
    provider = FakeProvider()
    d = drainer(settings.with_(claim_idle=30.0), provider)
    published: list[tuple[str, str]] = []
    producer.r.delete(producer.keys.drains("Dreams"))  # the chains send_bulk started
    [slot] = producer.control.acquire_slots("Dreams", 1, 30.0)
    ticks = iter(range(100))
    out = Chain(d, producer.control, publish=lambda s, t: published.append((s, t)),
                slot_ttl=30.0, budget=1.5, clock=lambda: float(next(ticks))).run("Dreams", slot)
    assert published == [("Dreams", slot)]  # the budget ran out after two passes
    assert out["sent"] == 150 and producer.campaign_status(cid).sent == 150
    assert producer.r.hlen(producer.keys.lease("Dreams")) == 0
    assert_once(provider, 150)


def test_killed_before_the_folded_outcome_is_written_holds_never_resends(settings, producer):
    cid = producer.send_bulk("Dreams", [(n, "x") for n in numbers(30)])
    provider = FakeProvider()
    dead = drainer(settings, provider, consumer="dead")
    dead.drain_once("Dreams", fold=True)  # sent; the process dies before its next take
    for token in list(dead.heartbeat._held):
        dead.heartbeat.drop(token)  # its heartbeat dies with it
    time.sleep(settings.claim_idle + 0.05)
    drain_all(drainer(settings, provider, consumer="alive"), "Dreams")
    assert_once(provider, 30)  # the leases ran out: held, never resent
    st = producer.campaign_status(cid)
    assert (st.sent, st.unknown, st.queued) == (0, 30, 0)


def test_the_lease_hash_is_a_hash_table_without_a_stray_field(producer):
    """A listpack would cost a scan of the hash per id looked up, set or freed."""
    producer.send_bulk("Dreams", [(n, "x") for n in numbers(3)])
    taken = leases(producer, "c1").take("Dreams", 100, "t1")
    key = producer.keys.lease("Dreams")
    assert producer.r.object("encoding", key) == "hashtable"
    assert sorted(producer.r.hkeys(key)) == sorted(j.id for j in taken.send)


def test_a_folded_outcome_of_a_stale_owner_is_refused(producer):
    cid = producer.send_bulk("Dreams", [(n, "x") for n in numbers(10)])
    stale = leases(producer, "c1", seconds=0.05)
    jobs = stale.take("Dreams", 100, "t1").send
    time.sleep(0.1)
    fresh = leases(producer, "c2").take("Dreams", 100, "t2", claim_ms=1)
    assert len(fresh.unknown) == 10
    late = stale.take("Dreams", 100, "t3",
                      settle=Outcome("t1", jobs, SENT, cf.SENT, producer.store.ttl))
    assert sorted(late.refused) == sorted(j.id for j in jobs) and late.status == "empty"
    assert producer.campaign_status(cid).sent == 0
    assert producer.r.hlen(producer.keys.lease("Dreams")) == 10  # c2's leases, untouched
    done = leases(producer, "c2").take(
        "Dreams", 100, "t4", settle=Outcome("t2", [j for j, _ in fresh.unknown], SENT,
                                            cf.SENT, producer.store.ttl))
    assert done.refused == [] and producer.campaign_status(cid).sent == 10
    assert producer.r.hlen(producer.keys.lease("Dreams")) == 0


def test_leftovers_go_back_to_the_stream_at_a_chain_end(settings, producer):
    url = "https://maps.google.com/?q=1"
    producer.send_bulk("Dreams", [(n, "plain") for n in numbers(3)])
    producer.send("0551234567", "meet", "Dreams", location_url=url)
    producer.send_bulk("Dreams", [(n, "more") for n in numbers(3, 100)])
    provider = FakeProvider()
    d = drainer(settings, provider)
    d.drain_once("Dreams")  # the plain ones; the invitation is read but waits its own call
    assert provider.calls == 1 and len(provider.accepted) == 6
    assert d.hand_back("Dreams") == 1
    other = drainer(settings, provider, consumer="c2")
    drain_all(other, "Dreams")
    assert_once(provider, 7)


def test_concurrent_held_resend_settles_each_id_once(settings, producer):
    from dreams_sms.errors import OutcomeUnknown

    cid = producer.send_bulk("Dreams", [(n, "x") for n in numbers(5)])
    provider = FakeProvider()
    provider.fail_next = [OutcomeUnknown("sendsms_multi", "read timeout")]
    drain_all(drainer(settings, provider), "Dreams")
    ids = [j.id for j in producer.store.held()]
    assert len(ids) == 5
    counts: list[int] = []
    barrier = threading.Barrier(4)

    def resend():
        p = Producer(settings, app=FakeApp())
        barrier.wait()
        counts.append(p.store.settle_held(ids, delivered=False, now=p.control.now()))

    threads = [threading.Thread(target=resend) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 5
    assert producer.r.xlen(producer.keys.stream("Dreams")) == 5
    assert producer.campaign_status(cid).unknown == 0
    drain_all(drainer(settings, provider), "Dreams")
    assert_once(provider, 5)  # the fake refused before accepting: each resent once
    assert producer.campaign_status(cid).sent == 5
