"""What the drain does about each kind of failed call: one table.

Where is -113 handled? Here: `Kind.BALANCE` pauses sending for the reason
"balance" (the jobs go back to the queue; the beat lifts it). Where is a batch
split on -117? Here too: `Kind.PER_NUMBER` splits. `decide` is the only place
that maps an error to an action; `drain` carries the actions out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dreams_sms.errors import HttpRefused, ProviderError, TransportError
from dreams_sms.provider.codes import Kind


class Action(StrEnum):
    HOLD = "hold"  # the call may have reached the provider: reconcile or hold, never resend
    RETRY_LATER = "retry_later"  # certainly refused for now: back to the queue after a delay
    PAUSE = "pause"  # nobody can send until this is fixed: pause all, keep the jobs
    CLOSE_SENDER = "close_sender"  # -123: this sender is done for the local day
    SPLIT = "split"  # refused because of some recipients or its size: halve the batch
    FAIL = "fail"  # refused for good: the jobs fail with the code


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str = ""  # the pause reason, for PAUSE


#: A provider code's kind -> what to do (after tenacity's retries, for RETRYABLE).
BY_KIND: dict[Kind, Decision] = {
    Kind.RETRYABLE: Decision(Action.RETRY_LATER),
    Kind.BALANCE: Decision(Action.PAUSE, "balance"),
    Kind.ACCOUNT: Decision(Action.PAUSE, "account"),
    Kind.SENDER_LIMIT: Decision(Action.CLOSE_SENDER),
    Kind.PER_NUMBER: Decision(Action.SPLIT),
    Kind.SENDER: Decision(Action.FAIL),
    Kind.REQUEST: Decision(Action.FAIL),
    Kind.CONFLICT: Decision(Action.FAIL),
}


def decide(err: ProviderError | TransportError, batch: int) -> Decision:
    """The action for a call of `batch` jobs that ended in `err`."""
    if isinstance(err, ProviderError):
        decision = BY_KIND[err.kind]
    elif err.ambiguous:
        return Decision(Action.HOLD)
    elif isinstance(err, HttpRefused) and err.too_large:
        decision = Decision(Action.SPLIT)
    elif isinstance(err, HttpRefused) and not err.retryable:
        # A wrong URL, a redirect, a firewall: the same call fails again until
        # someone fixes it; the beat lifts this once the provider answers it.
        return Decision(Action.PAUSE, "http")
    else:  # 5xx, 429, connect failures: certainly not accepted
        return Decision(Action.RETRY_LATER)
    if decision.action is Action.SPLIT and batch < 2:
        return Decision(Action.FAIL)
    return decision
