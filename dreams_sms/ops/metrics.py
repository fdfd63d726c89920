"""Prometheus metrics from the project's own counters, kept in Redis.

Workers add to one Redis hash as they go (a pipelined HINCRBY per batch or
call), and the exporter reads it at scrape time together with live figures
(stream depth, pending entries, daily use, balance, pause). So one exporter
shows the whole fleet, whatever process or machine did the work, and the
figures survive worker restarts. Task runtimes and worker liveness are left
to Flower's own /metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import cast

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from dreams_sms.config import Settings
from dreams_sms.queue.connect import connect
from dreams_sms.queue.control import Control
from dreams_sms.queue.keys import GROUP, Keys
from dreams_sms.queue.quota import DailyQuota
from dreams_sms.worker.events import BUCKETS

log = logging.getLogger("dreams_sms.ops.metrics")

class DreamsCollector(Collector):
    def __init__(self, r: redis.Redis, settings: Settings):
        self.r = r
        self.s = settings
        self.keys = Keys(settings.prefix)
        self.control = Control(r, self.keys, test_clock=settings.test_clock)
        self.quota = DailyQuota(r, prefix=settings.prefix, tz=settings.tz)

    def collect(self) -> Iterator[Metric]:
        # The client decodes replies (decode_responses=True): str throughout.
        stats = cast("dict[str, str]", self.r.hgetall(self.keys.stats))
        msgs = CounterMetricFamily("dreams_messages", "Messages by sender and outcome",
                                   labels=["sender", "outcome", "code"])
        calls = CounterMetricFamily("dreams_provider_calls", "Provider HTTP calls",
                                    labels=["endpoint", "outcome"])
        retries = CounterMetricFamily("dreams_retries", "Provider call retries",
                                      labels=["sender", "code"])
        alerts = CounterMetricFamily("dreams_alerts", "Pauses raised as alerts",
                                     labels=["reason", "code"])
        buckets: dict[str, dict[str, float]] = {}
        sums: dict[str, float] = {}
        for name, value in stats.items():
            kind, *parts = name.split("|")
            if kind == "msg" and len(parts) == 3:
                msgs.add_metric(parts, float(value))
            elif kind == "call" and len(parts) == 2:
                calls.add_metric(parts, float(value))
            elif kind == "retry" and len(parts) == 2:
                retries.add_metric(parts, float(value))
            elif kind == "alert" and len(parts) == 2:
                alerts.add_metric(parts, float(value))
            elif kind == "lat" and len(parts) == 2:
                buckets.setdefault(parts[0], {})[parts[1]] = float(value)
            elif kind == "lat_sum" and len(parts) == 1:
                sums[parts[0]] = float(value)
        yield from (msgs, calls, retries, alerts)
        hist = HistogramMetricFamily("dreams_provider_call_seconds",
                                     "Provider call latency", labels=["endpoint"])
        for endpoint, b in sorted(buckets.items()):
            edges = [(repr(le), b.get(repr(le), 0.0)) for le in BUCKETS]
            edges.append(("+Inf", b.get("+Inf", 0.0)))
            hist.add_metric([endpoint], edges, sums.get(endpoint, 0.0))
        yield hist
        yield from self._live()

    def _live(self) -> Iterator[Metric]:
        balance = GaugeMetricFamily("dreams_balance", "Last balance seen by chk_balance")
        raw = self.r.get(self.keys.balance)
        if raw is not None:
            balance.add_metric([], float(raw))
        yield balance
        paused = self.control.paused()
        p = GaugeMetricFamily("dreams_paused", "1 when all sending is paused",
                              labels=["reason"])
        p.add_metric([paused.get("reason", "") if paused else ""], 1.0 if paused else 0.0)
        yield p
        depth = GaugeMetricFamily("dreams_stream_depth", "Jobs in a sender's stream",
                                  labels=["sender", "priority"])
        pending = GaugeMetricFamily("dreams_stream_pending",
                                    "Jobs taken by a worker and not yet settled",
                                    labels=["sender", "priority"])
        sender_paused = GaugeMetricFamily("dreams_sender_paused", "1 when a sender is paused",
                                          labels=["sender"])
        used = GaugeMetricFamily("dreams_daily_used", "Messages sent today (local day)",
                                 labels=["sender"])
        limit = GaugeMetricFamily("dreams_daily_limit", "Daily limit (no sample: none)",
                                  labels=["sender"])
        now = self.control.now()
        senders = sorted(cast("set[str]", self.r.smembers(self.keys.senders)))  # decoded
        for sender in senders:
            for prio, stream in zip(("high", "normal"), self.keys.streams(sender), strict=True):
                depth.add_metric([sender, prio], float(self.r.xlen(stream)))
                try:
                    n = self.r.xpending(stream, GROUP)["pending"]
                except redis.ResponseError:
                    n = 0
                pending.add_metric([sender, prio], float(n))
            sender_paused.add_metric([sender], 1.0 if self.r.exists(
                self.keys.sender_paused(sender)) else 0.0)
        for sender, (u, lim) in self.quota.usage(senders, now).items():
            used.add_metric([sender], float(u))
            if lim is not None:  # no sample: no limit
                limit.add_metric([sender], float(lim))
        yield from (depth, pending, sender_paused, used, limit)
        yield GaugeMetricFamily("dreams_delayed_jobs", "Jobs waiting for a time (retries, "
                                "scheduled)", value=float(self.r.zcard(self.keys.delayed)))
        yield GaugeMetricFamily("dreams_held_unknown", "Jobs held with an unknown outcome",
                                value=float(self.r.hlen(self.keys.held)))


def registry(settings: Settings, r: redis.Redis | None = None) -> CollectorRegistry:
    reg = CollectorRegistry()
    client = r or connect(settings)
    reg.register(DreamsCollector(client, settings))
    return reg


def serve(settings: Settings, address: str = "127.0.0.1", port: int = 9108) -> None:
    from prometheus_client import start_http_server

    start_http_server(port, addr=address, registry=registry(settings))
    log.info("metrics on http://%s:%d/metrics", address, port)
    while True:
        time.sleep(3600)
