"""What the drain reports as it works: log lines here, metrics in a subclass.

One line per provider batch (sender, size, outcome, code, latency) and one per
retry and alert; `metrics.RedisEvents` also counts them for Prometheus.
"""

from __future__ import annotations

import logging

log = logging.getLogger("dreams_sms.worker.drain")


class Events:
    """Where the drain reports what happened: logs here, metrics in a subclass."""

    def batch(self, sender: str, size: int, outcome: str, code: int | str | None,
              seconds: float) -> None:
        log.info("batch sender=%s size=%d outcome=%s code=%s latency=%.3fs",
                 sender, size, outcome, code if code is not None else "-", seconds)

    def retry(self, sender: str, exc: BaseException) -> None:
        log.warning("retry sender=%s error=%s", sender, exc)

    def alert(self, reason: str, code: int | None, detail: str) -> None:
        log.error("ALERT sending paused reason=%s code=%s: %s", reason, code, detail)

    def outcome(self, sender: str, state: str, n: int, code: str = "") -> None:
        """Counted per message (metrics hook)."""

    def flush(self) -> None:
        """Write out anything buffered (called when a drain task ends)."""
