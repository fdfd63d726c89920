"""A worker, beat or Flower process, composed from the environment.

`celery -A dreams_sms.worker ...` loads this module (Celery looks for a
`celery` module in a package): settings are read and checked here, once, and
a bad one stops the process with one line naming the variable.
"""

from __future__ import annotations

import logging

import redis
from celery import signals

from dreams_sms.config import Settings
from dreams_sms.errors import ConfigError
from dreams_sms.provider.redact import RedactingFilter
from dreams_sms.queue.connect import connect
from dreams_sms.queue.redis_policy import check_eviction
from dreams_sms.worker.app import make_app
from dreams_sms.worker.root import PerProcess
from dreams_sms.worker.tasks import register

log = logging.getLogger("dreams_sms.worker")

try:
    settings = Settings.from_env()
except ConfigError as exc:  # one clear line, not a traceback, when a setting is wrong
    raise SystemExit(f"dreams-sms: {exc}") from None
app = make_app(settings)
# The process's current app: Flower's task page formats times with the current
# app's time zone, its task list with this one's; one zone throughout.
app.set_current()
register(app, PerProcess(settings))


@signals.worker_init.connect
@signals.beat_init.connect
def _check_redis(**_: object) -> None:
    """Refuse to start on a Redis that may evict queued messages or quota counters."""
    r = connect(settings)
    try:
        check_eviction(r, allow=settings.allow_eviction)
    except ConfigError as exc:
        log.critical("dreams-sms: %s", exc)
        raise SystemExit(f"dreams-sms: {exc}") from None
    except redis.RedisError:
        pass  # not reachable yet: Celery's own connection retries say so
    finally:
        r.close()


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _redact_logs(logger: logging.Logger, **_: object) -> None:
    for handler in logger.handlers:
        handler.addFilter(RedactingFilter())
