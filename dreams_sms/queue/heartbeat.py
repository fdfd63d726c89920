"""Keeping what a worker holds alive while it works.

A pass may wait on a slow provider, on retries and on token renewals; a
takeover timer that runs out meanwhile would hand its jobs to another worker.
A daemon thread renews the leases and pending entries of the call in progress,
and the drain slot of the chain, every `interval` seconds, whatever the main
thread is waiting on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from dreams_sms.queue.jobs import Job
from dreams_sms.queue.lease import Leases

log = logging.getLogger("dreams_sms.queue.heartbeat")


class Heartbeat:
    def __init__(self, leases: Leases, interval: float):
        self.leases = leases
        self.interval = max(interval, 0.01)
        self._held: dict[str, tuple[str, list[Job]]] = {}
        self._extra: dict[str, Callable[[], object]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, sender: str, token: str, jobs: Sequence[Job]) -> None:
        """Keep `jobs` (leased with `token`, or pending with us) fresh until `drop`."""
        with self._lock:
            self._held[token] = (sender, list(jobs))
        self._ensure_running()

    def drop(self, token: str) -> None:
        with self._lock:
            self._held.pop(token, None)

    def every(self, name: str, fn: Callable[[], object]) -> None:
        """Also run `fn` on every beat (a drain slot's refresh) until `forget(name)`."""
        with self._lock:
            self._extra[name] = fn
        self._ensure_running()

    def forget(self, name: str) -> None:
        with self._lock:
            self._extra.pop(name, None)

    def beat(self) -> None:
        """One round of renewals (the thread's body; callable directly in tests)."""
        with self._lock:
            held = list(self._held.items())
            extra = list(self._extra.values())
        for token, (sender, jobs) in held:
            try:
                self.leases.renew(sender, token, jobs)
            except Exception as exc:  # Redis away: the main thread finds out too
                log.warning("could not renew leases for sender %s: %s", sender, exc)
        for fn in extra:
            try:
                fn()
            except Exception as exc:
                log.warning("heartbeat task failed: %s", exc)

    def _ensure_running(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="dreams-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stop = threading.Event()
        while not stop.wait(self.interval):
            self.beat()
