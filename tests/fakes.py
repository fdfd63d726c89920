"""Fakes for unit tests: a provider that records what it accepted, a Celery app stub,
and a transport adapter that answers HTTP requests from a script."""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs

import requests
from requests.adapters import HTTPAdapter

from dreams_sms.errors import ProviderError
from dreams_sms.provider.client import multi_payload


class FakeApp:
    def __init__(self):
        self.sent = []

    def send_task(self, name, args=None, **kw):
        self.sent.append((name, args))


class FakeAdapter(HTTPAdapter):
    """Answers from a script: (status, body) pairs or exceptions to raise."""

    def __init__(self, *answers: tuple[int, bytes | str] | BaseException):
        super().__init__()
        self.answers = list(answers)
        self.sent: list[tuple[requests.PreparedRequest, dict]] = []

    def send(self, request, **kwargs):
        self.sent.append((request, kwargs))
        answer = self.answers.pop(0) if self.answers else (200, b"999")
        if isinstance(answer, BaseException):
            raise answer
        status, body = answer
        response = requests.Response()
        response.status_code = status
        response._content = body.encode() if isinstance(body, str) else body
        response._content_consumed = True
        response.headers["Location"] = "/elsewhere"
        response.request = request
        response.url = request.url
        return response

    @property
    def form(self) -> dict[str, str]:
        request = self.sent[-1][0]
        return {k: v[0] for k, v in parse_qs(request.body, keep_blank_values=True).items()}


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
