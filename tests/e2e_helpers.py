"""Shared helpers for end-to-end tests: a private stack and record checks."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from dreams_sms.config import Settings
from dreams_sms.ops.stack import Stack
from dreams_sms.producer import Producer
from dreams_sms.sandbox.testing import SandboxAdmin

#: One row per chaos scenario run (tests/test_chaos.py), printed after the run.
CHAOS_RESULTS: list[dict] = []

# Fast settings for tests: short claim idle and timeouts so recovery is quick.
FAST_ENV = {
    "DREAMS_CLAIM_IDLE": "6",
    "DREAMS_CONNECT_TIMEOUT": "1",
    "DREAMS_READ_TIMEOUT": "2",
    "DREAMS_RETRY_ATTEMPTS": "4",
    "DREAMS_RETRY_MAX_WAIT": "0.5",
    "DREAMS_RETRY_DELAY": "1",
    "DREAMS_BALANCE_INTERVAL": "1",
    "DREAMS_BATCH_WAIT": "0.05",
    "DREAMS_TEST_CLOCK": "1",
}


def make_stack(**kw) -> Stack:
    env = dict(FAST_ENV)
    env.update(kw.pop("env", {}))
    return Stack(env=env, **kw)


def producer_for(stack: Stack) -> Producer:
    env = stack.env()
    settings = Settings.from_env(env)
    return Producer(settings)


def wait_for(
    cond: Callable[[], bool],
    timeout: float,
    what: str,
    stack: Stack | None = None,
    every: float = 0.2,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(every)
    logs = stack.logs() if stack else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs[-6000:]}")


def accepted_counter(admin: SandboxAdmin) -> Counter:
    return Counter((m["sender"], m["to"], m["text"]) for m in admin.messages())


def check_exactly_once(admin: SandboxAdmin, expected: Counter) -> dict:
    """Compare the sandbox's record with what was enqueued."""
    got = accepted_counter(admin)
    lost = sum((expected - got).values())
    dupes = sum((got - expected).values())
    once = sum(min(got[k], v) for k, v in expected.items())
    return {
        "enqueued": sum(expected.values()),
        "accepted_once": once,
        "lost": lost,
        "duplicates": dupes,
    }


def reset_queue(p: Producer) -> None:
    """Undo what a test left in the shared stack's Redis (flags, clock, limits)."""
    p.control.resume()
    r = p.r
    for pattern in (p.keys.sender_paused("*"), *p.keys.daily()):
        for key in r.scan_iter(pattern):
            r.delete(key)
    r.delete(p.keys.clock, p.keys.held, p.keys.limits)


def nums(n: int, start: int = 0) -> list[str]:
    return [f"9665{i:08d}" for i in range(start, start + n)]
