"""Starting drain chains where there is work and room for them."""

from __future__ import annotations

from celery import Celery

from dreams_sms.config import Settings
from dreams_sms.queue.control import Control
from dreams_sms.worker.app import publish_drain


def slot_ttl(settings: Settings) -> float:
    """A chain that stops refreshing (its worker died) frees its slot after this."""
    return max(settings.claim_idle, 5.0)


def kick(app: Celery, control: Control, settings: Settings, sender: str,
         want: int | None = None) -> int:
    """Top a sender up to `sender_parallelism` live drain chains (or `want`, when
    less work waits: one OTP needs one chain, not a task per worker slot);
    returns chains started."""
    limit = max(settings.sender_parallelism, 1)
    if want is not None:
        limit = max(min(limit, want), 1)
    tokens = control.acquire_slots(sender, limit, slot_ttl(settings))
    for token in tokens:
        publish_drain(app, sender, token)
    return len(tokens)
