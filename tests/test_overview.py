"""The dashboard's readers (api/overview.py) and the campaign index they list from,
against a real private Redis; every state is set up the way the system makes it:
the producer queues, the quota counts and closes, a drainer sends and holds."""

from __future__ import annotations

import json

import pytest
from fakes import FakeApp, FakeProvider, drain_all, numbers

from dreams_sms.api.overview import Overview, OverviewReader, Pause, dumps
from dreams_sms.config import Settings
from dreams_sms.errors import OutcomeUnknown
from dreams_sms.producer import Producer
from dreams_sms.queue.quota import DailyQuota
from dreams_sms.worker.drain import Drainer


@pytest.fixture
def settings(redis_url):
    # Ten per call, so one drain pass moves a campaign by a known step.
    return Settings(redis_url=redis_url, batch_size=10, batch_wait=0.0, claim_idle=0.2,
                    retry_attempts=1, retry_max_wait=0.01, test_clock=True)


@pytest.fixture
def producer(settings):
    return Producer(settings, app=FakeApp())


@pytest.fixture
def quota(settings, producer):
    return DailyQuota(producer.r, prefix=settings.prefix, tz=settings.tz)


def drainer(settings, provider):
    p = Producer(settings, app=FakeApp())
    return Drainer(r=p.r, settings=settings, provider=provider, consumer="c1",
                   sleep=lambda s: None)


def read(settings, producer) -> Overview:
    return OverviewReader(producer.r, settings).read()


# -- the campaign index ---------------------------------------------------------------------

def test_campaigns_are_listed_newest_first_while_their_hash_lives(producer):
    idx, keys = producer.campaigns, producer.keys
    producer.send_bulk("Promo", [(n, "ramadan") for n in numbers(3)], campaign="ramadan")
    producer.control.set_clock_offset(60)
    producer.send("0551234567", "code 1", "Dreams", campaign="otp")
    producer.send("0551234568", "code 2", "Dreams", campaign="otp")  # listed once
    producer.control.set_clock_offset(120)
    producer.send_bulk("Promo", [(n, "eid") for n in numbers(2)], campaign="eid")
    assert idx.recent(10) == ["eid", "otp", "ramadan"]
    assert idx.recent(2) == ["eid", "otp"]
    assert producer.r.ttl(keys.campaigns) == -1  # the index itself never expires
    scores = dict(producer.r.zrange(keys.campaigns, 0, -1, withscores=True))
    assert scores["otp"] == pytest.approx(float(producer.r.hget(keys.campaign("otp"),
                                                                "created")))
    # Its hash expired: no longer listed; pruned once older than `before`.
    producer.r.delete(keys.campaign("ramadan"))
    assert idx.recent(10) == ["eid", "otp"]
    now = producer.control.now()
    assert idx.prune(before=now) == 1
    assert producer.r.zscore(keys.campaigns, "ramadan") is None
    # An old campaign whose messages still wait (its hash has no TTL) is never pruned.
    assert idx.prune(before=now + 3600) == 0
    assert producer.r.zcard(keys.campaigns) == 2
    # A reused id is listed again, as new.
    producer.send_bulk("Promo", [(n, "ramadan 2") for n in numbers(1)], campaign="ramadan")
    assert idx.recent(10)[0] == "ramadan"


def test_an_import_prunes_campaigns_whose_hash_expired(settings, producer):
    producer.send_bulk("Promo", [(n, "old") for n in numbers(1)], campaign="old")
    producer.r.delete(producer.keys.campaign("old"))  # its TTL ran out
    producer.control.set_clock_offset(settings.status_ttl + 10)
    producer.send_bulk("Promo", [(n, "new") for n in numbers(1)], campaign="new")
    assert producer.r.zrange(producer.keys.campaigns, 0, -1) == ["new"]


# -- senders --------------------------------------------------------------------------------

def test_senders_show_depth_deferred_use_limit_and_pauses(settings, producer, quota):
    producer.send_bulk("Promo", [(n, "offer") for n in numbers(30)])
    for n in numbers(2, 100):
        producer.send(n, "urgent", "Promo", priority="high")
    later = producer.control.now() + 3600
    for n in numbers(3, 200):
        producer.send(n, "later", "Promo", send_at=later)
    producer.send("0551234567", "hi", "Dreams")
    now = producer.control.now()
    quota.set_limit("Promo", 100)
    assert quota.reserve("Promo", 40, now) == 40
    quota.set_limit("Quiet", 0)  # an operator closed a sender that never queued
    quota.close_for_today("Dreams", now)  # the provider said -123
    producer.pause("Promo")

    ov = read(settings, producer)
    by = {s.name: s for s in ov.senders}
    assert sorted(by) == ["Dreams", "Promo", "Quiet"]
    promo = by["Promo"]
    assert (promo.high, promo.normal, promo.depth, promo.deferred) == (2, 30, 32, 3)
    assert (promo.used_today, promo.limit, promo.closed) == (40, 100, False)
    assert [(p.reason, p.scope, p.by) for p in promo.pauses] == [("operator", "Promo", "producer")]
    assert promo.state == "paused"
    assert (by["Quiet"].closed, by["Quiet"].limit, by["Quiet"].closed_reason) == \
        (True, 0, "daily limit 0 reached")
    assert by["Quiet"].state == "closed" and by["Quiet"].depth == 0
    dreams = by["Dreams"]
    assert (dreams.closed, dreams.normal, dreams.limit, dreams.used_today) == (True, 1, None, 0)
    assert "-123" in dreams.closed_reason
    assert ov.day == producer.keys.quota("x", now, settings.tz).rsplit(":", 1)[1]
    assert ov.timezone == "Asia/Riyadh"
    kinds = [(a.level, a.kind) for a in ov.alerts]
    assert kinds == [("warning", "closed"), ("warning", "pause"), ("warning", "closed")]
    assert "1 messages wait for tomorrow" in ov.alerts[0].text

    # A global pause applies to every sender, after its own; and is the first alert.
    producer.control.pause(reason="balance", code=-113, by="balance-check")
    ov = read(settings, producer)
    assert ov.pauses == [Pause("balance", "all", "-113", ov.pauses[0].since, "balance-check")]
    by = {s.name: s for s in ov.senders}
    assert [(p.reason, p.scope) for p in by["Promo"].pauses] == \
        [("operator", "Promo"), ("balance", "all")]
    assert [p.reason for p in by["Quiet"].pauses] == ["balance"]
    assert ov.alerts[0].level == "critical" and "balance (code -113)" in ov.alerts[0].text


def test_a_limit_used_up_by_sending_closes_the_sender(settings, producer, quota):
    quota.set_limit("Promo", 25)
    producer.send_bulk("Promo", [(n, "x") for n in numbers(40)])
    drain_all(drainer(settings, FakeProvider()), "Promo")
    ov = read(settings, producer)
    promo = next(s for s in ov.senders if s.name == "Promo")
    assert (promo.used_today, promo.limit, promo.closed, promo.normal) == (25, 25, True, 15)
    assert promo.closed_reason == "daily limit 25 reached"
    camp = ov.campaigns[0]
    assert camp.closed_today and camp.counts["sent"] == 25
    assert camp.counts["deferred"] == 15  # what waits for tomorrow, as `status` counts it


# -- campaigns ------------------------------------------------------------------------------

def test_campaign_counts_by_state_and_progress_move_with_each_pass(settings, producer):
    cid = producer.send_bulk("Promo", [(n, "ramadan") for n in numbers(50)], campaign="ramadan")
    ov = read(settings, producer)
    assert [c.id for c in ov.campaigns] == ["ramadan"]
    c = ov.campaigns[0]
    assert (c.total, c.counts["queued"], c.settled, c.progress, c.sender) == \
        (50, 50, 0, 0.0, "Promo")
    provider = FakeProvider()
    provider.refuse[numbers(50)[5]] = -117
    d = drainer(settings, provider)
    d.drain_once("Promo")
    d.drain_once("Promo")
    c = read(settings, producer).campaigns[0]
    assert c.settled == 20 and c.progress == pytest.approx(0.4)
    assert c.counts["sent"] + c.counts["failed"] == 20 and c.counts["queued"] == 30
    assert c.failures == {-117: 1} and c.counts["failed"] == 1
    drain_all(d, "Promo")
    c = read(settings, producer).campaigns[0]
    assert (c.counts["sent"], c.counts["failed"], c.counts["queued"], c.finished) == \
        (49, 1, 0, True)
    assert c.progress == 1.0
    st = producer.campaign_status(cid)
    assert (st.sent, st.failed) == (c.counts["sent"], c.counts["failed"])  # one reading


def test_held_messages_are_counted_with_their_ids(settings, producer):
    producer.send_bulk("Promo", [(n, "x") for n in numbers(25)], campaign="held")
    provider = FakeProvider()
    provider.fail_next = [OutcomeUnknown("sendsms_multi", "timeout after sending")]
    d = drainer(settings, provider)
    d.drain_once("Promo")  # one call of ten: its outcome is unknown, held
    drain_all(d, "Promo")
    ov = OverviewReader(producer.r, settings, held=3).read()
    assert ov.held.count == 10 == producer.store.held_count()
    assert [h.id for h in ov.held.newest] == ["held-10", "held-9", "held-8"]
    assert {h.sender for h in ov.held.newest} == {"Promo"}
    assert "dreams-sms held" in ov.held.steps
    camp = ov.campaigns[0]
    assert (camp.counts["unknown"], camp.counts["sent"], camp.finished) == (10, 15, True)
    held_alert = [a for a in ov.alerts if a.kind == "held"]
    assert len(held_alert) == 1 and held_alert[0].text.startswith("10 held message(s)")
    assert "dreams-sms held resend" in held_alert[0].hint
    # Settled through the store (what `dreams-sms held delivered` does): gone from the view.
    producer.store.settle_held(["held-1", "held-2"], delivered=True, now=producer.control.now())
    assert read(settings, producer).held.count == 8


def test_the_json_carries_the_derived_figures(settings, producer):
    producer.send_bulk("Tom&Jerry", [(n, "مرحبا") for n in numbers(4)], campaign="رمضان")
    producer.r.hset(producer.keys.stats, mapping={"alert|balance|-113": 2, "msg|x|sent|": 9})
    producer.r.set(producer.keys.balance, "812.5")
    text = dumps(read(settings, producer))
    assert '"id":"رمضان"' in text  # readable, not \u escapes
    data = json.loads(text)
    assert data["senders"][0]["name"] == "Tom&Jerry"
    assert data["senders"][0]["depth"] == 4 and data["senders"][0]["state"] == "sending"
    camp = data["campaigns"][0]
    assert (camp["id"], camp["total"], camp["settled"], camp["progress"], camp["finished"]) \
        == ("رمضان", 4, 0, 0.0, False)
    assert data["raised"] == {"balance -113": 2}
    assert data["balance"] == 812.5
    assert data["held"] == {"count": 0, "newest": [], "steps": [
        "dreams-sms held", "dreams-sms held delivered ID...", "dreams-sms held resend ID..."]}
