"""Settling ambiguous sends: was a message accepted before we lost the answer?

The real provider offers no lookup by client reference, so against it the
worker holds such messages for review (at most once: never a blind resend).
The sandbox records what it accepted and can answer, which lets the chaos
tests prove the policy end to end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import requests


class Message(Protocol):
    """What reconciling needs of a queued job (the provider wing knows no queue)."""

    @property
    def to(self) -> str: ...

    @property
    def text(self) -> str: ...


class SandboxReconciler:
    """Asks the sandbox's admin lookup which of these messages it accepted."""

    def __init__(self, url: str, *, timeout: float = 5.0, session: requests.Session | None = None):
        self.url = url.rstrip("/") + "/_sandbox/lookup"
        self.timeout = timeout
        self.session = session or requests.Session()

    def accepted(self, sender: str, jobs: Sequence[Message], since: float
                 ) -> list[bool] | None:
        items = [{"to": j.to, "text": j.text} for j in jobs]
        resp = self.session.post(self.url, json={"sender": sender, "since": since, "items": items},
                                 timeout=self.timeout)
        resp.raise_for_status()
        counts = resp.json()["accepted"]
        # Identical (to, text) pairs in one batch share the sandbox's count.
        seen: Counter[tuple[str, str]] = Counter()
        out = []
        for job, n in zip(jobs, counts, strict=True):
            seen[(job.to, job.text)] += 1
            out.append(seen[(job.to, job.text)] <= int(n))
        return out
