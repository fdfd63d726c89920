"""The composition root: every long-lived part of a worker process, built once.

Settings decide what is built (OAuth or not, a per-second cap or not,
reconcile or hold); nothing else in the worker wing reads settings to build
its collaborators, and nothing is built at import. Built after the pool
forks: each process gets its own Redis connections and consumer name.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import redis

from dreams_sms.config import Settings
from dreams_sms.provider.client import DreamsClient
from dreams_sms.provider.oauth import OAuthClient
from dreams_sms.provider.reconcile import SandboxReconciler
from dreams_sms.queue.connect import connect
from dreams_sms.queue.control import Control
from dreams_sms.queue.delayed import Delayed
from dreams_sms.queue.keys import Keys
from dreams_sms.queue.quota import DailyQuota
from dreams_sms.queue.rate import Gcra
from dreams_sms.queue.redis_policy import check_eviction
from dreams_sms.queue.tokenstore import RedisTokenStore, SharedTokenHolder
from dreams_sms.worker.drain import Drainer
from dreams_sms.worker.events import RedisEvents


@dataclass
class Root:
    """What the tasks of one worker process share."""

    settings: Settings
    r: redis.Redis
    keys: Keys
    control: Control
    quota: DailyQuota
    delayed: Delayed
    client: DreamsClient
    drainer: Drainer

    @classmethod
    def build(cls, settings: Settings, *, consumer: str | None = None) -> Root:
        r = connect(settings, health_check_interval=25)
        check_eviction(r, allow=settings.allow_eviction)
        keys = Keys(settings.prefix)
        control = Control(r, keys, test_clock=settings.test_clock)
        quota = DailyQuota(r, prefix=settings.prefix, tz=settings.tz)
        events = RedisEvents(r, keys)
        token = None
        if settings.oauth_enabled:
            token = SharedTokenHolder(
                OAuthClient(settings),
                RedisTokenStore(r, keys.token, settings.client_secret,
                                client_id=settings.client_id))
        client = DreamsClient(settings, token=token, on_call=events.call)
        gcra = Gcra(r, keys.gcra, rate=settings.rate_per_second,
                    burst=settings.batch_size) if settings.rate_per_second else None
        reconciler = SandboxReconciler(settings.reconcile_url) \
            if settings.on_unknown == "reconcile" else None
        drainer = Drainer(r=r, settings=settings, provider=client,
                          consumer=consumer or f"{socket.gethostname()}:{os.getpid()}",
                          quota=quota, control=control, gcra=gcra, reconciler=reconciler,
                          events=events)
        return cls(settings, r, keys, control, quota, Delayed(r, keys), client, drainer)


class PerProcess:
    """A `Root` per process id: built on first use after a fork, then reused."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._built: tuple[int, Root] | None = None

    def __call__(self) -> Root:
        if self._built is None or self._built[0] != os.getpid():
            self._built = (os.getpid(), Root.build(self.settings))
        return self._built[1]
