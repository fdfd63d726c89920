"""The drain logic against a real Redis with a fake provider (no HTTP, no Celery)."""

from __future__ import annotations

import pytest
from fakes import FakeApp, FakeProvider, drain_all, numbers

from dreams_sms.config import Settings
from dreams_sms.errors import OutcomeUnknown, ProviderError, ServerError, ValidationError
from dreams_sms.producer import Producer
from dreams_sms.worker.drain import Drainer


@pytest.fixture
def settings(redis_url):
    return Settings(
        redis_url=redis_url,
        batch_wait=0.0,
        claim_idle=0.05,
        retry_attempts=3,
        retry_max_wait=0.01,
        test_clock=True,
    )


@pytest.fixture
def producer(settings):
    return Producer(settings, app=FakeApp())


def drainer(settings, provider, consumer="c1", **kw):
    return Drainer(
        r=Producer(settings, app=FakeApp()).r,
        settings=settings,
        provider=provider,
        consumer=consumer,
        sleep=lambda s: None,
        **kw,
    )



def test_batches_and_exactly_once(settings, producer):
    cid = producer.send_bulk("Dreams", [(n, f"hello {n}") for n in numbers(250)])
    assert cid.queued == 250
    provider = FakeProvider()
    rep = drain_all(drainer(settings, provider), "Dreams")
    assert rep.stop == "empty"
    assert provider.calls == 3
    assert len(provider.accepted) == len(set(provider.accepted)) == 250
    st = producer.campaign_status(cid)
    assert (st.sent, st.queued, st.sending, st.failed) == (250, 0, 0, 0)
    assert producer.status(f"{cid}-1").state == "sent"
    assert producer.r.xlen(producer.keys.stream("Dreams")) == 0


def test_bad_rows_reported_by_index_rest_queued(producer):
    rows = [("0551234567", "ok"), ("123", "bad number"), ("0551234568", ""), ("0551234569", "ok")]
    res = producer.send_bulk("Dreams", rows)
    assert res.queued == 2
    assert [i for i, _ in res.rejected] == [1, 2]
    assert "123" in res.rejected[0][1]


def test_per_number_errors_isolated(settings, producer):
    nums = numbers(100)
    cid = producer.send_bulk("Dreams", [(n, "x") for n in nums])
    provider = FakeProvider()
    provider.refuse = {nums[7]: -117, nums[60]: -122}
    d = drainer(settings, provider)
    rep = d.drain_once("Dreams")
    assert rep.failed == 2 and rep.sent == 98
    assert rep.isolation_calls > 0
    st = producer.campaign_status(cid)
    assert st.failures == {-117: 1, -122: 1}
    assert producer.status(f"{cid}-8").code == -117


def test_transient_errors_retried(settings, producer):
    producer.send_bulk("Dreams", [(n, "x") for n in numbers(10)])
    provider = FakeProvider()
    provider.fail_next = [
        ProviderError("sendsms_multi", -114),
        ServerError("sendsms_multi", "503", 503),
    ]
    drain_all(drainer(settings, provider), "Dreams")
    assert len(provider.accepted) == 10 and provider.calls == 3


def test_exhausted_retries_go_back_with_delay(settings, producer):
    cid = producer.send_bulk("Dreams", [(n, "x") for n in numbers(5)])
    provider = FakeProvider()
    provider.fail_next = [ProviderError("sendsms_multi", -118)] * 3
    rep = drain_all(drainer(settings, provider), "Dreams")
    assert rep.deferred == 5 or producer.campaign_status(cid).deferred == 5
    from dreams_sms.queue.delayed import Delayed

    d = Delayed(producer.r, producer.keys)
    assert d.size() == 5
    assert d.promote(producer.control.now() + settings.retry_delay + 1) == 5
    drain_all(drainer(settings, provider), "Dreams")
    assert len(provider.accepted) == 5
    assert producer.campaign_status(cid).sent == 5


def test_balance_pauses_and_keeps_jobs(settings, producer):
    cid = producer.send_bulk("Dreams", [(n, "x") for n in numbers(150)])
    provider = FakeProvider()
    d = drainer(settings, provider)
    d.drain_once("Dreams")
    provider.fail_next = [ProviderError("sendsms_multi", -113)]
    rep = d.drain_once("Dreams")
    assert rep.stop == "paused"
    assert producer.control.paused()["reason"] == "balance"
    assert d.drain_once("Dreams").stop == "paused"
    producer.control.resume()
    drain_all(d, "Dreams")
    assert len(provider.accepted) == len(set(provider.accepted)) == 150
    assert producer.campaign_status(cid).sent == 150


def test_daily_limit_defers_to_next_day(settings, producer):
    s = settings.with_(daily_limits={"Promo": 120})
    cid = producer.send_bulk("Promo", [(n, "x") for n in numbers(300)])
    producer.send_bulk("Dreams", [(n, "y") for n in numbers(50)])
    provider = FakeProvider()
    d = drainer(s, provider)
    assert drain_all(d, "Promo").stop == "closed"
    assert len(provider.accepted) == 120
    drain_all(d, "Dreams")
    assert len(provider.accepted) == 170
    st = Producer(s, app=FakeApp()).campaign_status(cid)
    assert st.closed_today and st.deferred == 180
    producer.control.set_clock_offset(86_400)
    drain_all(d, "Promo")
    assert len(provider.accepted) == 290
    producer.control.set_clock_offset(2 * 86_400)
    drain_all(d, "Promo")
    assert len([a for a in provider.accepted if a[0] == "Promo"]) == 300


def test_provider_123_closes_sender(settings, producer):
    producer.send_bulk("Promo", [(n, "x") for n in numbers(20)])
    provider = FakeProvider()
    provider.fail_next = [ProviderError("sendsms_multi", -123)]
    d = drainer(settings, provider)
    assert d.drain_once("Promo").stop == "closed"
    assert d.drain_once("Promo").stop == "closed"
    producer.control.set_clock_offset(86_400)
    drain_all(d, "Promo")
    assert len(provider.accepted) == 20


def test_unknown_outcome_held_without_reconciler(settings, producer):
    cid = producer.send_bulk("Dreams", [(n, "x") for n in numbers(10)])
    provider = FakeProvider()
    provider.fail_next = [OutcomeUnknown("sendsms_multi", "read timeout")]
    drain_all(drainer(settings, provider), "Dreams")
    st = producer.campaign_status(cid)
    assert st.unknown == 10 and provider.calls == 1
    assert producer.r.hlen(producer.keys.held) == 10


class Oracle:
    def __init__(self, provider):
        self.provider = provider

    def accepted(self, sender, jobs, since):
        return [(sender, j.to, j.text) in self.provider.accepted for j in jobs]


def test_crashed_consumer_recovered_and_reconciled(settings, producer):
    cid = producer.send_bulk("Dreams", [(n, "x") for n in numbers(30)])
    provider = FakeProvider()
    dead = drainer(settings, provider, consumer="dead")
    jobs = dead.leases.take("Dreams", 30, "t-dead").send  # leased, then the worker dies mid-call
    assert len(jobs) == 30
    provider.accepted += [("Dreams", j.to, j.text) for j in jobs[:5]]  # landed before the crash
    import time

    time.sleep(0.1)
    alive = drainer(settings, provider, consumer="alive", reconciler=Oracle(provider))
    drain_all(alive, "Dreams")
    assert sorted(provider.accepted) == sorted(set(provider.accepted))
    assert len(provider.accepted) == 30
    st = producer.campaign_status(cid)
    assert (st.sent, st.unknown, st.queued) == (30, 0, 0)


def test_priority_goes_first(settings, producer):
    producer.send_bulk("Dreams", [(n, "bulk") for n in numbers(500)])
    provider = FakeProvider()
    d = drainer(settings, provider)
    d.drain_once("Dreams")
    mid = producer.send("0551234567", "otp 1234", "Dreams", priority="high")
    d.drain_once("Dreams")
    assert ("Dreams", "966551234567", "otp 1234") in provider.accepted
    assert producer.status(mid).state == "sent"


def test_expired_never_sent(settings, producer):
    mid = producer.send("0551234567", "otp", "Dreams", expires_in=60)
    producer.control.set_clock_offset(120)
    provider = FakeProvider()
    drain_all(drainer(settings, provider), "Dreams")
    assert provider.accepted == []
    assert producer.status(mid).state == "expired"


def test_idempotency_key(settings, producer):
    a = producer.send("0551234567", "otp", "Dreams", key="order-1")
    b = producer.send("0551234567", "otp", "Dreams", key="order-1")
    assert a == b
    provider = FakeProvider()
    drain_all(drainer(settings, provider), "Dreams")
    assert len(provider.accepted) == 1


def test_options_go_one_by_one_through_sendsms(settings, producer):
    producer.send("0551234567", "meet", "Dreams", location_url="https://maps.google.com/?q=1")
    producer.send("0551234568", "plain", "Dreams")
    provider = FakeProvider()
    drain_all(drainer(settings, provider), "Dreams")
    assert len(provider.accepted) == 2 and provider.calls == 2


def test_scheduled_send_waits(settings, producer):
    now = producer.control.now()
    mid = producer.send("0551234567", "later", "Dreams", send_at=now + 3600)
    assert producer.status(mid).state == "deferred"
    provider = FakeProvider()
    drain_all(drainer(settings, provider), "Dreams")
    assert provider.accepted == []
    from dreams_sms.queue.delayed import Delayed

    assert Delayed(producer.r, producer.keys).promote(now + 3601) == 1
    drain_all(drainer(settings, provider), "Dreams")
    assert producer.status(mid).state == "sent"


def test_bulk_rows_with_keys_are_idempotent(settings, producer):
    rows = [{"to": "0551234567", "text": "a", "key": "k1"},
            {"to": "0551234568", "text": "b", "key": "k1"},
            {"to": "0551234569", "text": "c"}]
    res = producer.send_bulk("Dreams", rows)
    assert res.queued == 2
    provider = FakeProvider()
    drain_all(drainer(settings, provider), "Dreams")
    assert sorted(t for _, _, t in provider.accepted) == ["a", "c"]
    assert producer.campaign_status(res).sent == 2


class Broken:
    def accepted(self, sender, jobs, since):
        raise ConnectionError("reconciler down")


def test_reconciler_outage_keeps_jobs_pending_until_it_answers(settings, producer):
    cid = producer.send_bulk("Dreams", [(n, "x") for n in numbers(10)])
    provider = FakeProvider()
    provider.fail_next = [OutcomeUnknown("sendsms_multi", "connection dropped")]
    d = drainer(settings, provider, reconciler=Broken())
    d.drain_once("Dreams")
    st = producer.campaign_status(cid)
    assert (st.unknown, st.sending, st.sent) == (0, 10, 0)  # in doubt, waiting to be asked
    import time

    time.sleep(0.1)  # past claim_idle: the entries are claimable again
    d2 = drainer(settings, provider, consumer="c2", reconciler=Oracle(provider))
    drain_all(d2, "Dreams")
    assert len(provider.accepted) == 10
    assert producer.campaign_status(cid).sent == 10


def test_idle_consumers_are_forgotten(settings, producer):
    from dreams_sms.queue.keys import GROUP
    from dreams_sms.worker.tasks import forget_idle_consumers  # no side effects on import

    producer.send_bulk("Dreams", [(n, "x") for n in numbers(3)])
    drain_all(drainer(settings, FakeProvider(), consumer="gone"), "Dreams")
    stream = producer.keys.stream("Dreams")
    assert [c["name"] for c in producer.r.xinfo_consumers(stream, GROUP)] == ["gone"]
    assert forget_idle_consumers(producer.r, producer.keys, idle_ms=10**9) == 0
    import time

    time.sleep(0.01)  # idle for more than 0 ms (a fast drain ends within the same ms)
    assert forget_idle_consumers(producer.r, producer.keys, idle_ms=0) >= 1
    assert producer.r.xinfo_consumers(stream, GROUP) == []


def test_both_streams_busy_high_first_and_quota_exact(settings, producer):
    s = settings.with_(daily_limits={"Dreams": 150})
    for i, n in enumerate(numbers(60)):
        producer.send(n, f"otp {i}", "Dreams", priority="high")
    producer.send_bulk("Dreams", [(n, "bulk") for n in numbers(200, 1000)])
    provider = FakeProvider()
    d = drainer(s, provider)
    d.drain_once("Dreams")
    assert [t for _, _, t in provider.accepted[:60]] == [f"otp {i}" for i in range(60)]
    assert drain_all(d, "Dreams").stop == "closed"
    assert len(provider.accepted) == len(set(provider.accepted)) == 150
    producer.control.set_clock_offset(86_400)
    drain_all(d, "Dreams")
    assert len(provider.accepted) == len(set(provider.accepted)) == 260


def test_per_second_cap_waits_between_batches(settings, producer):
    from dreams_sms.queue.rate import Gcra

    producer.send_bulk("Dreams", [(n, "x") for n in numbers(300)])
    slept: list[float] = []
    provider = FakeProvider()
    d = Drainer(r=producer.r, settings=settings, provider=provider, consumer="c1",
                gcra=Gcra(producer.r, "t:gcra", rate=1000, burst=100),
                sleep=slept.append)
    drain_all(d, "Dreams")
    assert len(provider.accepted) == 300
    assert slept and all(0 < s <= 1.0 for s in slept)  # it waited for the bucket to refill


def test_held_messages_are_settled_by_an_operator(settings, producer):
    cid = producer.send_bulk("Dreams", [(n, f"h{i}") for i, n in enumerate(numbers(6))])
    provider = FakeProvider()
    provider.fail_next = [OutcomeUnknown("sendsms_multi", "read timeout")]
    drain_all(drainer(settings, provider), "Dreams")
    held = producer.store.held()
    assert len(held) == 6 and producer.campaign_status(cid).unknown == 6
    ids = sorted(j.id for j in held)
    now = producer.control.now()
    assert producer.store.settle_held(ids[:2], delivered=True, now=now) == 2
    assert producer.store.settle_held(ids[2:], delivered=False, now=now) == 4
    assert producer.store.settle_held(ids, delivered=True, now=now) == 0  # already settled
    drain_all(drainer(settings, provider), "Dreams")
    st = producer.campaign_status(cid)
    assert (st.sent, st.unknown, st.queued) == (6, 0, 0)
    assert len(provider.accepted) == 4
    assert producer.status(ids[0]).state == "sent"


def test_cancelled_campaign_is_dropped_not_sent(settings, producer):
    keep = producer.send_bulk("Dreams", [(n, "keep") for n in numbers(150)])
    stop = producer.send_bulk("Dreams", [(n, "stop") for n in numbers(250, 5000)])
    provider = FakeProvider()
    d = drainer(settings, provider)
    d.drain_once("Dreams")  # the first batch (all of `keep`) goes out
    producer.cancel(stop)
    drain_all(d, "Dreams")
    sent_stop = sum(1 for _, _, t in provider.accepted if t == "stop")
    assert sent_stop <= 100  # at most the batch in flight when it was cancelled
    st = producer.campaign_status(stop)
    assert st.sent == sent_stop and st.cancelled == 250 - sent_stop and st.done
    assert producer.campaign_status(keep).sent == 150
    assert producer.status(f"{stop}-250").state == "cancelled"
    drain_all(d, "Dreams")  # settled: never counted twice
    assert producer.campaign_status(stop).cancelled == 250 - sent_stop
    with pytest.raises(ValidationError):
        producer.cancel("nope")
