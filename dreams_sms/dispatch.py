"""Starting drain chains where there is work and room for them."""

from __future__ import annotations

from celery import Celery

from .celeryapp import publish_drain
from .config import Settings
from .control import Control


def slot_ttl(settings: Settings) -> float:
    """A chain that stops refreshing (its worker died) frees its slot after this."""
    return max(settings.claim_idle, 5.0)


def kick(app: Celery, control: Control, settings: Settings, sender: str) -> int:
    """Top a sender up to `sender_parallelism` live drain chains; returns chains started."""
    tokens = control.acquire_slots(sender, max(settings.sender_parallelism, 1), slot_ttl(settings))
    for token in tokens:
        publish_drain(app, sender, token)
    return len(tokens)
