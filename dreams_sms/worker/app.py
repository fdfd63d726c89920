"""The Celery application: queues, routes, beat schedule. Control plane only.

Celery carries drain chains and control tasks (tick, balance), never one task
per SMS: messages live in Redis Streams.
"""

from __future__ import annotations

import sys

from celery import Celery

from dreams_sms.config import SentinelTarget, Settings
from dreams_sms.queue.keys import Keys

SEND_QUEUE = "dreams.send"
OPS_QUEUE = "dreams.ops"
DRAIN = "dreams.drain"
TICK = "dreams.tick"
BALANCE = "dreams.check_balance"


def make_app(settings: Settings, *, main: str = "dreams_sms") -> Celery:
    keys = Keys(settings.prefix)
    target = settings.sentinel
    broker = target.kombu_url(settings.redis_password.reveal()) if target else settings.redis_url
    app = Celery(main, broker=broker, set_as_current=False)
    app.conf.update(
        task_ignore_result=True,  # no result backend: no SUBSCRIBE per publish
        result_backend=None,
        task_default_queue=SEND_QUEUE,
        task_routes={DRAIN: {"queue": SEND_QUEUE}, TICK: {"queue": OPS_QUEUE},
                     BALANCE: {"queue": OPS_QUEUE}},
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,  # a drain chain holds its slot; don't hoard others
        # ...and take a task only with a process free for it: tasks are acked when they
        # start, so a worker whose processes all run chains would otherwise reserve
        # more, and they would wait there while another worker's processes idle.
        worker_disable_prefetch=True,
        task_acks_late=False,  # durability lives in the stream's pending list, not here
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": 3600,
            "health_check_interval": 25,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
        task_send_sent_event=True,
        beat_scheduler="dreams_sms.worker.beat:Scheduler",
        redbeat_key_prefix=keys.redbeat,
        redbeat_lock_timeout=30,
        beat_max_loop_interval=5,
        beat_schedule={
            "tick": {"task": TICK, "schedule": 1.0, "options": {"expires": 5}},
            "balance": {"task": BALANCE, "schedule": settings.balance_interval,
                        "options": {"expires": max(settings.balance_interval, 5)}},
        },
        timezone=settings.timezone,
    )
    if target is not None:
        _sentinel_conf(app, settings, target)
    if _running_beat() and target is None:
        # Only beat needs it; kept out of workers' conf because Celery does not
        # mask this key in `inspect conf` (Flower's worker page would show the
        # Redis password).
        app.conf.redbeat_redis_url = settings.redis_url
        # Beat publishes a tick every second: no `task-sent` events for those, so
        # Flower's task list stays an activity log of drains (ticks also carry
        # send_events=False, so workers report nothing of them either).
        app.conf.task_send_sent_event = False
    return app


def _sentinel_conf(app: Celery, settings: Settings, target: SentinelTarget) -> None:
    """The broker and beat find the master through the same sentinels as the data plane.

    The sentinels' password goes in options; beat's Redis client retries
    through a failover instead of exiting.
    """
    sentinel_kwargs: dict[str, object] = {"socket_timeout": 1.0}
    if settings.sentinel_password:
        sentinel_kwargs["password"] = settings.sentinel_password.reveal()
    app.conf.broker_transport_options.update(
        master_name=target.master, sentinel_kwargs=sentinel_kwargs)
    if _running_beat():
        app.conf.redbeat_redis_url = "redis-sentinel://sentinels"
        app.conf.redbeat_redis_options = {
            "sentinels": list(target.hosts), "service_name": target.master, "db": target.db,
            "password": settings.redis_password.reveal() or None,
            "sentinel_kwargs": sentinel_kwargs, "socket_timeout": 5.0,
            "retry_period": -1,  # ride out a failover, however long the promotion takes
        }


def _running_beat() -> bool:
    return "beat" in sys.argv[1:]


def publish_drain(app: Celery, sender: str, token: str) -> None:
    # argsrepr keeps Flower's view to the sender name: no texts, no secrets exist here anyway.
    app.send_task(DRAIN, args=[sender, token], queue=SEND_QUEUE, expires=600,
                  argsrepr=f"({sender!r})")
