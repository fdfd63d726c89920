"""Nothing silently dropped: ids that never repeat, campaigns safe to reuse,
resumable imports, refusals that pause instead of hold, pauses by reason,
an evicting Redis refused (a real Redis; the sandbox over HTTP where the
defect is in the HTTP exchange)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fakes import FakeApp, FakeProvider, drain_all, numbers

from dreams_sms.config import Settings
from dreams_sms.errors import BulkInterrupted, ConfigError, OutcomeUnknown, ProviderError
from dreams_sms.producer import Producer
from dreams_sms.provider.client import DreamsClient
from dreams_sms.queue.quota import DailyQuota
from dreams_sms.queue.redis_policy import check_eviction
from dreams_sms.sandbox.state import DEMO_SECRET, DEMO_USER
from dreams_sms.sandbox.testing import running_sandbox
from dreams_sms.worker.balance import check
from dreams_sms.worker.drain import UNKNOWN_STREAK, Drainer


@pytest.fixture
def settings(redis_url):
    return Settings(redis_url=redis_url, batch_wait=0.0, claim_idle=0.2, retry_attempts=2,
                    retry_max_wait=0.01, test_clock=True)


@pytest.fixture
def producer(settings):
    return Producer(settings, app=FakeApp())




def drainer(settings, provider, **kw):
    p = Producer(settings, app=FakeApp())
    return Drainer(r=p.r, settings=settings, provider=provider, consumer="c1",
                   sleep=lambda s: None, **kw)


# -- ids and campaigns ----------------------------------------------------------------------

def test_a_reused_campaign_id_is_delivered_after_its_hash_expired(settings, producer):
    provider = FakeProvider()
    first = producer.send_bulk("Dreams", [(n, "week 1") for n in numbers(50)],
                               campaign="weekly_digest")
    drain_all(drainer(settings, provider), "Dreams")
    producer.r.delete(producer.keys.campaign("weekly_digest"))  # its TTL ran out; statuses live
    again = producer.send_bulk("Dreams", [(n, "week 2") for n in numbers(50)],
                               campaign="weekly_digest")
    assert (first.queued, again.queued) == (50, 50)
    drain_all(drainer(settings, provider), "Dreams")
    assert len(provider.accepted) == len(set(provider.accepted)) == 100
    st = producer.campaign_status("weekly_digest")
    assert (st.total, st.sent, st.queued) == (50, 50, 0)
    assert producer.status("weekly_digest-51").state == "sent"
    assert producer.status("weekly_digest-100").state == "sent"


def test_a_cancelled_campaign_id_takes_later_sends(settings, producer):
    provider = FakeProvider()
    cid = producer.send_bulk("Dreams", [(n, "old") for n in numbers(20)], campaign="promo")
    producer.cancel(cid)
    later = producer.send("0551234567", "new", "Dreams", campaign="promo")
    more = producer.send_bulk("Dreams", [(n, "new bulk") for n in numbers(20, 100)],
                              campaign="promo")
    drain_all(drainer(settings, provider), "Dreams")
    texts = sorted(t for _, _, t in provider.accepted)
    assert texts == ["new"] + ["new bulk"] * 20
    st = producer.campaign_status("promo")
    assert (st.cancelled, st.sent, st.done) == (20, 21, True)
    assert producer.status(later).state == "sent" and more.queued == 20


def test_an_interrupted_import_resumes_without_doubling(settings, producer):
    rows = [(n, f"row {i}") for i, n in enumerate(numbers(3000))]

    def failing() -> Iterator[tuple[str, str]]:
        for i, row in enumerate(rows):
            if i == 2500:
                raise OSError("the upload connection broke")
            yield row

    with pytest.raises(BulkInterrupted) as caught:
        producer.send_bulk("Dreams", failing(), campaign="import_42")
    exc = caught.value
    assert exc.campaign == "import_42" and exc.committed == 2000
    assert "resume=True" in str(exc)
    res = producer.send_bulk("Dreams", rows, campaign=exc.campaign, resume=True)
    assert res.queued == 1000
    assert producer.r.xlen(producer.keys.stream("Dreams")) == 3000
    provider = FakeProvider()
    drain_all(drainer(settings, provider), "Dreams")
    assert sorted(t for _, _, t in provider.accepted) == sorted(t for _, t in rows)
    assert producer.campaign_status("import_42").sent == 3000


def test_rows_are_checked_before_anything_is_written(producer):
    from dreams_sms.errors import ValidationError

    with pytest.raises(ValidationError, match="rows"):
        producer.send_bulk("Dreams", None, campaign="nothing")  # type: ignore[arg-type]
    assert not producer.r.exists(producer.keys.campaign("nothing"))


# -- refusals that are certain: pause, never hold ------------------------------------------

def test_a_404_pauses_with_an_alert_and_holds_nothing(settings, producer):
    with running_sandbox() as sandbox:
        s = settings.with_(base_url=f"{sandbox.url}/index.php/apii", user=DEMO_USER)  # a typo
        s = s.with_(secret_key=type(s.secret_key)(DEMO_SECRET))
        cid = producer.send_bulk("Dreams", [(n, "x") for n in numbers(500)])
        d = drainer(s, DreamsClient(s))
        rep = drain_all(d, "Dreams")
        assert rep.stop == "paused"
        pauses = producer.control.pauses()
        assert list(pauses) == ["http"] and pauses["http"]["code"] == "http404"
        st = producer.campaign_status(cid)
        assert (st.unknown, st.sent, st.queued) == (0, 0, 500)
        quota = DailyQuota(producer.r, prefix=s.prefix, tz=s.tz)
        assert quota.used("Dreams", producer.control.now()) == 0  # nothing counted
        # Fixed: the beat's balance probe gets an answer and lifts the pause by itself.
        good = s.with_(base_url=f"{sandbox.url}/index.php/api")
        result = check(producer.r, producer.keys, producer.control, DreamsClient(good), good)
        assert result.resumed and producer.control.pauses() == {}
        drain_all(drainer(good, DreamsClient(good)), "Dreams")
        assert producer.campaign_status(cid).sent == 500


def test_unreadable_answers_in_a_row_pause_instead_of_filling_the_held_list(settings, producer):
    producer.send_bulk("Dreams", [(n, "x") for n in numbers(2000)])
    provider = FakeProvider()
    provider.fail_next = [OutcomeUnknown("sendsms_multi", "garbled")] * 50
    d = drainer(settings, provider)
    rep = drain_all(d, "Dreams")
    assert rep.stop == "paused" and "unknown" in producer.control.pauses()
    assert producer.r.hlen(producer.keys.held) == UNKNOWN_STREAK * settings.batch_size


def test_pauses_by_reason_survive_a_113_in_flight(settings, producer):
    producer.send_bulk("Dreams", [(n, "x") for n in numbers(150)])

    class OperatorPausesMidCall(FakeProvider):
        def send_multi(self, sender, items):
            if not self.calls:
                producer.pause()  # an operator's pause lands while the call is on the wire
            return super().send_multi(sender, items)

    provider = OperatorPausesMidCall()
    provider.fail_next = [ProviderError("sendsms_multi", -113)]
    d = drainer(settings, provider)
    assert d.drain_once("Dreams").stop == "paused"
    assert set(producer.control.pauses()) == {"balance", "operator"}  # neither overwrote

    class Rich:
        def balance(self):
            return 10_000.0

    result = check(producer.r, producer.keys, producer.control, Rich(), settings)
    assert set(producer.control.pauses()) == {"operator"}  # the beat lifts only balance
    assert result.paused
    assert d.drain_once("Dreams").stop == "paused"
    producer.resume()
    drain_all(d, "Dreams")
    assert len(provider.accepted) == 150


# -- Redis that would evict ----------------------------------------------------------------

def test_an_evicting_redis_is_refused_in_one_line(settings, r):
    r.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with pytest.raises(ConfigError, match="maxmemory-policy is allkeys-lru") as caught:
            Producer(settings, app=FakeApp())
        assert "noeviction" in str(caught.value) and "\n" not in str(caught.value)
        assert check_eviction(r, allow=True) == "allkeys-lru"
        Producer(settings.with_(allow_eviction=True), app=FakeApp())
        r.config_set("maxmemory-policy", "volatile-lru")  # the usual managed default
        with pytest.raises(ConfigError):
            Producer(settings, app=FakeApp())
    finally:
        r.config_set("maxmemory-policy", "noeviction")
    assert check_eviction(r) == "noeviction"


def test_a_worker_refuses_an_evicting_redis(settings, r, tmp_path):
    import os
    import subprocess
    import sys

    r.config_set("maxmemory-policy", "allkeys-lru")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DREAMS_", "CELERY"))}
        env["REDIS_URL"] = settings.redis_url
        proc = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "dreams_sms.worker", "worker", "-P", "solo",
             "--without-mingle", "--without-gossip", "-Q", "dreams.send"],
            env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    finally:
        r.config_set("maxmemory-policy", "noeviction")
    assert proc.returncode != 0
    assert "maxmemory-policy is allkeys-lru" in proc.stdout + proc.stderr


def test_redis_errors_are_not_swallowed_by_the_check(settings):
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    with pytest.raises(redis.ConnectionError):
        check_eviction(dead)


def test_campaign_counters_live_as_long_as_their_messages(settings, producer):
    s = settings.with_(status_ttl=3600)
    p = Producer(s, app=FakeApp())
    cid = p.send_bulk("Dreams", [(n, "x") for n in numbers(150)])
    camp, status = p.keys.campaign(cid), p.keys.status(cid)
    assert p.r.ttl(camp) == -1  # waiting messages: no expiry
    d = drainer(s, FakeProvider())
    d.drain_once("Dreams")  # 100 of 150 settled
    assert (p.r.ttl(camp), p.r.ttl(status)) == (-1, -1)
    drain_all(d, "Dreams")
    assert 0 < p.r.ttl(camp) <= 3600 and 0 < p.r.ttl(status) <= 3600
    assert p.campaign_status(cid).sent == 150
