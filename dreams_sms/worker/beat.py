"""Beat's scheduler: redbeat's, made to ride through a Redis outage or failover.

redbeat extends its lock on every tick with a plain client call; a refused
connection, a demoted master (READONLY) or a lock the new master never saw
would end the beat process, and with it every tick and balance check. Here
such a tick waits a second instead, and a lost lock is taken again (or left
to the beat that holds it), so no one restarts beat by hand.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from redbeat import RedBeatScheduler
from redis.exceptions import LockError

log = logging.getLogger("dreams_sms.worker.beat")

#: Seconds between tries while Redis is away or another beat holds the lock.
RETRY = 1.0


class Scheduler(RedBeatScheduler):  # type: ignore[misc]  # redbeat ships no types
    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            return float(super().tick(*args, **kwargs))
        except LockError:
            self._lock_again()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("beat: redis unavailable (%s); waiting", exc)
        return RETRY

    def _lock_again(self) -> None:
        """The lock is gone (expired during an outage, or lost in a failover)."""
        if self.lock is None:
            return
        try:
            if self.lock.acquire(blocking=False):
                log.warning("beat: lock lost and taken again")
            else:
                log.info("beat: another beat holds the lock; standing by")
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("beat: redis unavailable (%s); waiting", exc)
