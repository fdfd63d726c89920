"""The balance check beat runs: pause before -113, resume when it is covered."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, cast

import redis

from dreams_sms.config import Settings
from dreams_sms.errors import DreamsError
from dreams_sms.provider.segments import segments
from dreams_sms.queue.control import Control
from dreams_sms.queue.keys import Keys

log = logging.getLogger("dreams_sms.worker.balance")


class BalanceSource(Protocol):
    """Where the balance is read: `DreamsClient` in a worker."""

    def balance(self) -> float: ...


@dataclass
class BalanceResult:
    balance: float | None
    next_batch_cost: int
    paused: bool
    resumed: bool
    error: str = ""


def next_batch_cost(r: redis.Redis, keys: Keys, batch_size: int) -> int:
    """Segments of the costliest sender's next batch: what the balance must cover."""
    worst = 0
    # The worker's client decodes replies (decode_responses=True): str throughout.
    for sender in cast("set[str]", r.smembers(keys.senders)):
        cost, room = 0, batch_size
        for stream in keys.streams(sender):
            entries = cast("list[tuple[str, dict[str, str]]]", r.xrange(stream, count=room))
            for _, fields in entries:
                cost += segments(fields.get("m", ""))
                room -= 1
        worst = max(worst, cost)
    return worst


def check(r: redis.Redis, keys: Keys, control: Control, client: BalanceSource,
          settings: Settings) -> BalanceResult:
    cost = next_batch_cost(r, keys, settings.batch_size)
    try:
        balance = float(client.balance())
    except DreamsError as exc:
        log.warning("balance check failed: %s", exc)
        return BalanceResult(None, cost, bool(control.paused()), False, str(exc))
    r.set(keys.balance, repr(balance))
    reasons = control.pauses()
    resumed = False
    # The provider answered a readable balance: the URL, the credentials and the
    # answers work again, so pauses for those lift themselves (each alone).
    for reason in ("http", "unknown"):
        if reason in reasons and control.resume(reason=reason):
            log.warning("the provider answers again: lifting the %s pause", reason)
            reasons.pop(reason)
            resumed = True
    if "balance" in reasons:
        if balance >= max(cost, 1):
            control.resume(reason="balance")
            log.warning("balance %.0f covers the next batch (%d): resuming", balance, cost)
            reasons.pop("balance")
            return BalanceResult(balance, cost, bool(reasons), True)
        return BalanceResult(balance, cost, True, resumed)
    if cost > 0 and balance < cost:
        control.pause(reason="balance", code=-113, by="balance-check")
        log.error("ALERT balance %.0f below the next batch's cost %d: paused", balance, cost)
        return BalanceResult(balance, cost, True, False)
    return BalanceResult(balance, cost, bool(reasons), resumed)
