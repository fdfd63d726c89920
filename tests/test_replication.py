"""Writes that must reach a replica before they count: the replicated lease, the
producer's confirmed enqueue, the Sentinel URL, and beat riding out a lost Redis.

Real redis-server processes: a master, a replica behind a relay that can be
frozen (so replication can really lag on loopback) and three sentinels.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fakes import FakeApp, FakeProvider, numbers
from sentinel_set import MASTER, SentinelSet

from dreams_sms.config import SentinelTarget, Settings
from dreams_sms.errors import BulkInterrupted, ConfigError, NotReplicated
from dreams_sms.producer import Producer
from dreams_sms.queue.connect import Replicas, connect, run_confirmed
from dreams_sms.queue.quota import DailyQuota
from dreams_sms.worker.drain import Drainer


@pytest.fixture(scope="module")
def cluster() -> Iterator[SentinelSet]:
    s = SentinelSet(password="pw-redis", sentinel_password="pw-sentinel").start()
    yield s
    s.close()


@pytest.fixture
def settings(cluster: SentinelSet) -> Iterator[Settings]:
    assert cluster.relay is not None
    cluster.relay.thaw()
    st = Settings.from_env({**cluster.env(), "DREAMS_BATCH_WAIT": "0",
                            "DREAMS_REPLICA_TIMEOUT": "0.2"})
    r = connect(st)
    r.flushdb()
    yield st
    cluster.relay.thaw()
    r.flushdb()


# -- the URL -------------------------------------------------------------------------
def test_a_sentinel_url_names_every_sentinel_the_master_and_the_db():
    t = SentinelTarget.parse("sentinel://10.0.0.1:26379,10.0.0.2:26380,sentinel-3/main/2")
    assert t.hosts == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("sentinel-3", 26379))
    assert (t.master, t.db) == ("main", 2)
    assert t.kombu_url() == ("sentinel://10.0.0.1:26379/2;sentinel://10.0.0.2:26380/2;"
                             "sentinel://sentinel-3:26379/2")
    assert t.kombu_url("p@ss") .startswith("sentinel://:p%40ss@10.0.0.1:26379/2;")


@pytest.mark.parametrize(("url", "says"), [
    ("sentinel://h:26379", "MASTER_NAME"),
    ("sentinel://:secret@h:26379/main", "REDIS_PASSWORD"),
    ("sentinel://h:port/main", "'h:port' is not HOST:PORT"),
    ("sentinel:///main", "names no sentinel"),
    ("sentinel://h:26379/main/zero", "'zero' is not a number"),
])
def test_a_bad_sentinel_url_is_refused_naming_what_is_wrong(url, says):
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"REDIS_URL": url})
    assert "REDIS_URL" in str(exc.value) and says in str(exc.value)
    assert "secret" not in str(exc.value)


def test_replicas_are_confirmed_by_default_only_with_sentinel():
    assert Settings.from_env({"REDIS_URL": "sentinel://h:1/m"}).replicas_to_confirm == 1
    assert Settings.from_env({"REDIS_URL": "redis://h:1/0"}).replicas_to_confirm == 0
    assert Settings.from_env({"REDIS_URL": "redis://h:1/0",
                              "DREAMS_REPLICA_ACKS": "1"}).replicas_to_confirm == 1
    assert Settings.from_env({"REDIS_URL": "sentinel://h:1/m",
                              "DREAMS_REPLICA_ACKS": "0"}).replicas_to_confirm == 0


def test_passwords_never_show_in_the_settings_or_the_broker_url_celery_prints(cluster):
    from dreams_sms.worker.app import make_app

    st = Settings.from_env(cluster.env())
    assert "pw-redis" not in repr(st) and "pw-sentinel" not in repr(st)
    app = make_app(st)
    with app.connection() as conn:
        shown = conn.as_uri()
    assert "pw-redis" not in shown
    assert app.conf.broker_transport_options["master_name"] == MASTER
    from celery.app.utils import filter_hidden_settings
    assert "pw-sentinel" not in repr(filter_hidden_settings(app.conf.table()))


# -- how many replicas --------------------------------------------------------------
class FakeInfo:
    def __init__(self, n: int):
        self.n = n
        self.asked = 0

    def info(self, section: str) -> dict:
        self.asked += 1
        return {"connected_slaves": self.n}


def test_the_replicas_required_are_those_configured_or_fewer_if_fewer_are_connected():
    now = [0.0]
    info = FakeInfo(2)
    rep = Replicas(info, 1, 0.25, every=2.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert rep.wait_args() == (1, 250)
    info.n = 0  # the master lost its replicas (say, after a failover)
    assert rep.wait_args() == (1, 250)  # read at most every 2 s
    now[0] = 2.5
    assert rep.wait_args() is None  # nobody to confirm on, nobody to fail over to
    assert info.asked == 2


# -- the replicated lease ----------------------------------------------------------
def test_a_lease_confirmed_by_the_replica_is_sent(settings):
    p = Producer(settings, app=FakeApp())
    for n in numbers(5):
        p.send(n, "hi", "Dreams")
    provider = FakeProvider()
    d = Drainer(r=p.r, settings=settings, provider=provider, consumer="c1")
    report = d.drain_once("Dreams")
    assert report.sent == 5 and report.stop is None
    assert len(provider.accepted) == 5


def test_a_lease_no_replica_confirmed_is_never_sent_and_is_freed(settings, cluster):
    p = Producer(settings, app=FakeApp())
    p.send_bulk("Dreams", [(n, "hi") for n in numbers(30)])
    d_quota = DailyQuota(p.r, prefix=settings.prefix, tz=settings.tz)
    d_quota.set_limit("Dreams", 1000)
    provider = FakeProvider()
    d = Drainer(r=p.r, settings=settings, provider=provider, consumer="c1",
                quota=d_quota)
    cluster.relay.freeze()
    report = d.drain_once("Dreams")
    assert report.stop == "replication"
    assert provider.calls == 0
    assert p.r.hlen(p.keys.lease("Dreams")) == 0  # freed: nothing waits for a takeover
    used = p.r.get(d.quota.counter_key("Dreams", d.leases.now()))
    assert int(used or 0) == 0  # the quota given back
    d.hand_back("Dreams")
    cluster.relay.thaw()
    while not d.drain_once("Dreams").stop:
        pass
    assert sorted(a[1] for a in provider.accepted) == numbers(30)  # each once


def test_a_retried_call_is_not_sent_on_a_lease_the_replica_never_saw(settings, cluster):
    from dreams_sms.errors import ProviderError

    p = Producer(settings, app=FakeApp())
    p.send_bulk("Dreams", [(n, "hi") for n in numbers(10)])
    provider = FakeProvider()
    provider.fail_next = [ProviderError("sendsms_multi", -114)]

    def freeze_in_backoff(seconds: float) -> None:
        cluster.relay.freeze()  # the replica falls behind while we wait to retry

    d = Drainer(r=p.r, settings=settings, provider=provider, consumer="c1",
                sleep=freeze_in_backoff)
    report = d.drain_once("Dreams")
    assert provider.calls == 1 and not provider.accepted
    assert report.stop == "replication"
    assert p.r.hlen(p.keys.lease("Dreams")) == 0


# -- the producer ------------------------------------------------------------------
def test_a_message_the_replica_did_not_confirm_is_reported_and_a_keyed_retry_is_safe(
        settings, cluster):
    p = Producer(settings, app=FakeApp())
    cluster.relay.freeze()
    with pytest.raises(NotReplicated) as exc:
        p.send("966500000001", "otp 1", "Dreams", key="otp-1")
    assert (exc.value.acks, exc.value.required) == (0, 1)
    assert "same key" in str(exc.value)
    cluster.relay.thaw()
    mid = p.send("966500000001", "otp 1", "Dreams", key="otp-1")
    assert p.r.xlen(p.keys.stream("Dreams", False)) == 1  # queued once
    assert mid.startswith("m")


def test_a_bulk_chunk_the_replica_did_not_confirm_interrupts_and_resume_queues_the_rest(
        settings, cluster):
    p = Producer(settings, app=FakeApp())
    rows = [(n, f"bulk {i}") for i, n in enumerate(numbers(2500))]

    def frozen_after(k: int) -> Iterator[tuple[str, str]]:
        for i, row in enumerate(rows):
            if i == k:
                cluster.relay.freeze()
            yield row

    with pytest.raises(BulkInterrupted) as exc:
        p.send_bulk("Dreams", frozen_after(1500), campaign="lagging")
    assert isinstance(exc.value.__cause__, NotReplicated)
    assert exc.value.committed is not None and exc.value.committed <= 1500
    cluster.relay.thaw()
    p.send_bulk("Dreams", rows, campaign="lagging", resume=True)
    entries = p.r.xrange(p.keys.stream("Dreams", False))
    assert sorted(e[1]["t"] for e in entries) == sorted(n for n, _ in rows)


def test_a_script_the_master_forgot_is_loaded_again(settings):
    r = connect(settings)
    script = r.register_script("redis.call('SET', KEYS[1], ARGV[1]) return 7")
    r.script_flush()
    assert run_confirmed(r, script, ["k"], ["v"], (1, 500)) == (7, 1)
    assert r.get("k") == "v"


# -- beat ---------------------------------------------------------------------------
def test_beat_waits_through_a_lost_redis_and_takes_its_lock_again(monkeypatch):
    from redis.exceptions import LockNotOwnedError

    from dreams_sms.worker import beat

    class Lock:
        acquired = 0

        def acquire(self, blocking: bool = True) -> bool:
            assert not blocking  # a beat standing by must not block its loop
            self.acquired += 1
            return True

    failures: list[BaseException] = [redis.ConnectionError("refused"),
                                     LockNotOwnedError("gone"), redis.TimeoutError("slow")]

    def tick(self, *a, **k):
        if failures:
            raise failures.pop(0)
        return 5.0

    monkeypatch.setattr(beat.RedBeatScheduler, "tick", tick)
    s = object.__new__(beat.Scheduler)
    s.lock = Lock()
    assert [s.tick() for _ in range(4)] == [beat.RETRY, beat.RETRY, beat.RETRY, 5.0]
    assert s.lock.acquired == 1


# -- the operator's side ------------------------------------------------------------
def test_the_cli_the_exporter_and_the_api_speak_sentinel_too(settings, cluster, tmp_path):
    import os
    import subprocess
    import sys

    from prometheus_client import generate_latest

    from dreams_sms.api.app import create_app
    from dreams_sms.ops.metrics import registry

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DREAMS_", "REDIS_"))}
    env.update(cluster.env())
    Producer(settings, app=FakeApp()).send("966500000009", "hi", "Dreams")
    for cmd in (["pause", "--sender", "Dreams"], ["status"], ["limits"], ["held"]):
        out = subprocess.run([sys.executable, "-m", "dreams_sms", *cmd], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (cmd, out.stdout, out.stderr)
        assert "pw-redis" not in out.stdout + out.stderr
    control = Producer(settings, app=FakeApp()).control
    assert control.sender_pause("Dreams")  # the CLI's pause reached the master
    page = generate_latest(registry(settings)).decode()
    assert "dreams_" in page
    assert create_app(settings).state.ctx.producer.r.connection_pool.service_name == MASTER


def test_the_api_answers_503_when_no_replica_kept_a_message_and_the_keyed_retry_is_safe(
        settings, cluster):
    import requests

    from dreams_sms.api.app import create_app
    from dreams_sms.api.keys import ApiKeys
    from dreams_sms.api.testing import running_api

    app = create_app(settings)
    _, key = ApiKeys(connect(settings), settings.prefix).create(["Dreams"])
    body = {"to": "966500000077", "text": "otp 77", "sender": "Dreams"}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "otp-77"}
    with running_api(app) as base:
        cluster.relay.freeze()
        res = requests.post(f"{base}/v1/messages", json=body, headers=headers, timeout=10)
        assert res.status_code == 503, res.text
        assert res.json()["error"]["code"] == "not_replicated"
        assert res.headers["Retry-After"] == "1" and key not in res.text
        cluster.relay.thaw()
        again = requests.post(f"{base}/v1/messages", json=body, headers=headers, timeout=10)
        assert again.status_code in (200, 202), again.text
    assert connect(settings).xlen(app.state.ctx.producer.keys.stream("Dreams", False)) == 1
