"""What the drain reports as it works: log lines here, metrics in a subclass.

One line per provider batch (sender, size, outcome, code, latency) and one per
retry and alert; `RedisEvents` also counts them in Redis, where the metrics
exporter (`ops/metrics.py`) reads them for Prometheus.
"""

from __future__ import annotations

import logging
import time

import redis

from dreams_sms.queue.keys import Keys

log = logging.getLogger("dreams_sms.worker.drain")


class Events:
    """Where the drain reports what happened: logs here, metrics in a subclass."""

    def batch(self, sender: str, size: int, outcome: str, code: int | str | None,
              seconds: float) -> None:
        log.info("batch sender=%s size=%d outcome=%s code=%s latency=%.3fs",
                 sender, size, outcome, code if code is not None else "-", seconds)

    def retry(self, sender: str, exc: BaseException) -> None:
        log.warning("retry sender=%s error=%s", sender, exc)

    def alert(self, reason: str, code: int | str | None, detail: str) -> None:
        log.error("ALERT sending paused reason=%s code=%s: %s", reason, code, detail)

    def outcome(self, sender: str, state: str, n: int, code: str = "") -> None:
        """Counted per message (metrics hook)."""

    def flush(self) -> None:
        """Write out anything buffered (called when a drain task ends)."""


BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RedisEvents(Events):
    """The drain's events: logged (by the base class) and counted in Redis."""

    #: Counts are buffered in the process and written at most this often (and
    #: when a drain task ends), so metrics cost no round trip per batch.
    FLUSH_EVERY = 1.0

    def __init__(self, r: redis.Redis, keys: Keys):
        self.r = r
        self.key = keys.stats
        self._ints: dict[str, int] = {}
        self._floats: dict[str, float] = {}
        self._last = time.monotonic()

    def _add(self, *fields: tuple[str, int | float]) -> None:
        for name, n in fields:
            if isinstance(n, float):
                self._floats[name] = self._floats.get(name, 0.0) + n
            else:
                self._ints[name] = self._ints.get(name, 0) + n
        if time.monotonic() - self._last >= self.FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        self._last = time.monotonic()
        if not self._ints and not self._floats:
            return
        ints, floats = self._ints, self._floats
        self._ints, self._floats = {}, {}
        try:
            pipe = self.r.pipeline(transaction=False)
            for name, n in ints.items():
                pipe.hincrby(self.key, name, n)
            for name, x in floats.items():
                pipe.hincrbyfloat(self.key, name, x)
            pipe.execute()
        except redis.RedisError as exc:  # metrics must never stop sending
            log.warning("could not record metrics: %s", exc)

    def outcome(self, sender: str, state: str, n: int, code: str = "") -> None:
        if n:
            self._add((f"msg|{sender}|{state}|{code}", n))

    def retry(self, sender: str, exc: BaseException) -> None:
        super().retry(sender, exc)
        code = getattr(exc, "code", None) or getattr(exc, "status", None) or type(exc).__name__
        self._add((f"retry|{sender}|{code}", 1))

    def alert(self, reason: str, code: int | str | None, detail: str) -> None:
        super().alert(reason, code, detail)
        self._add((f"alert|{reason}|{code}", 1))

    def call(self, endpoint: str, seconds: float, outcome: str) -> None:
        """The client's `on_call` hook: one provider HTTP call."""
        fields: list[tuple[str, int | float]] = [(f"call|{endpoint}|{outcome}", 1),
                                                 (f"lat_sum|{endpoint}", float(seconds))]
        fields += [(f"lat|{endpoint}|{le}", 1) for le in BUCKETS if seconds <= le]
        fields.append((f"lat|{endpoint}|+Inf", 1))
        self._add(*fields)
