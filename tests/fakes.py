"""Fakes for unit tests: a provider that records what it accepted, a Celery app stub."""

from __future__ import annotations

import threading
import time

from dreams_sms.errors import ProviderError
from dreams_sms.provider.client import multi_payload


class FakeApp:
    def __init__(self):
        self.sent = []

    def send_task(self, name, args=None, **kw):
        self.sent.append((name, args))


class FakeProvider:
    """Records accepted messages; `fail_next` raises per call, `latency` slows each call,
    `shape` builds the payload as the real client would (object format refuses a
    number twice)."""

    def __init__(self, latency: float = 0.0, shape: str = "list"):
        self.accepted: list[tuple[str, str, str]] = []
        self.calls = 0
        self.refuse: dict[str, int] = {}
        self.fail_next: list[BaseException] = []
        self.latency = latency
        self.shape = shape
        self._lock = threading.Lock()

    def send_multi(self, sender, items):
        multi_payload(items, self.shape)
        with self._lock:
            self.calls += 1
            failure = self.fail_next.pop(0) if self.fail_next else None
        if self.latency:
            time.sleep(self.latency)
        if failure is not None:
            raise failure
        for to, _ in items:
            if to in self.refuse:
                raise ProviderError("sendsms_multi", self.refuse[to])
        with self._lock:
            self.accepted += [(sender, to, text) for to, text in items]
        return "Result:Success"

    def ready(self):
        pass

    def send(self, to, message, sender, **options):
        with self._lock:
            self.calls += 1
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            self.accepted.append((sender, to, message))
        return "Result:Success"


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"9665{i:08d}" for i in range(start, start + n)]


def drain_all(d, sender: str, rounds: int = 500):
    """Drain passes until one says the chain would stop; its report."""
    for _ in range(rounds):
        rep = d.drain_once(sender)
        if rep.stop:
            return rep
    raise AssertionError("drain did not finish")
