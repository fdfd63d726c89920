"""The naive design the benchmark compares against: one Celery task per SMS.

Each message is its own task message in the broker, and each task makes one
`sendsms` call. Nothing else: no batching, no streams, no limiter.

    REDIS_URL=redis://127.0.0.1:PORT/0 DREAMS_BASE_URL=... DREAMS_USER=... \\
        celery -A naive_app worker -Q naive -c 4      # run from bench/ (or with it on PYTHONPATH)

`bench/benchmark.py` starts such workers itself; in its own process it uses
`make_app(url)` to publish the tasks.
"""

from __future__ import annotations

import os

from celery import Celery

from dreams_sms.config import Settings
from dreams_sms.provider.client import DreamsClient

QUEUE = "naive"
TASK = "naive.send"


def make_app(broker_url: str | None) -> Celery:
    app = Celery("naive_app", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_ignore_result=True,
        result_backend=None,
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK, ignore_result=True)(send)
    return app


_client: tuple[int, DreamsClient] | None = None


def client() -> DreamsClient:
    """One client (one keep-alive session) per worker process, built after the fork."""
    global _client
    if _client is None or _client[0] != os.getpid():
        _client = (os.getpid(), DreamsClient(Settings.from_env()))
    return _client[1]


def send(to: str, text: str, sender: str) -> None:
    client().send(to, text, sender)


# For `celery -A naive_app worker`: the broker is the REDIS_URL the worker is started with.
app = make_app(os.environ.get("REDIS_URL") or None)
