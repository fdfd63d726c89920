"""The retry policy: only errors where the provider certainly did not accept.

-114/-118, connect failures, 5xx and HTTP 408/425/429 are retried with
exponential backoff and jitter; an ambiguous failure (read timeout, dropped
connection, unreadable answer) is never retried here, because resending it
could deliver the message twice. The policy reads only attributes of the
exception (`retryable`, `ambiguous`, `retry_after`), so a new error class
needs no change here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from dreams_sms.errors import DreamsError


def is_transient(exc: BaseException) -> bool:
    """Worth asking again now: retryable, and certainly not accepted the first time.

    An error that does not say whether it is ambiguous is taken as ambiguous.
    """
    if not isinstance(exc, DreamsError):
        return False
    return bool(getattr(exc, "retryable", False)) and not getattr(exc, "ambiguous", True)


def retry_after(exc: BaseException | None) -> float | None:
    """The wait the provider asked for (HTTP Retry-After), in seconds, if any."""
    value = getattr(exc, "retry_after", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def requeue_delay(exc: BaseException | None, default: float) -> float:
    """How long to park a batch whose retries ran out: `default` (DREAMS_RETRY_DELAY),
    or longer when the provider asked for longer."""
    asked = retry_after(exc)
    return max(default, asked) if asked is not None else default


def retrying(
    attempts: int,
    max_wait: float,
    *,
    before_attempt: Callable[[], None] | None = None,
    on_retry: Callable[[BaseException], None] | None = None,
    before_sleep: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    initial: float = 0.2,
) -> Retrying:
    """A tenacity policy: `attempts` tries with backoff capped at `max_wait`.

    A Retry-After is honoured: the wait is at least what the provider asked;
    when it asks for more than `max_wait`, retrying stops at once so the caller
    can park the batch (see `requeue_delay`) instead of blocking a worker.
    """
    backoff = wait_exponential_jitter(multiplier=initial, max=max_wait, jitter=initial)

    def before(_: RetryCallState) -> None:
        if before_attempt is not None:
            before_attempt()

    def after(state: RetryCallState) -> None:
        if on_retry is None or state.outcome is None or not state.outcome.failed:
            return
        exc = state.outcome.exception()
        if exc is not None:  # always, for a failed outcome
            on_retry(exc)

    def pause(_: RetryCallState) -> None:
        if before_sleep is not None:
            before_sleep()

    def asked(state: RetryCallState) -> float | None:
        if state.outcome is None or not state.outcome.failed:
            return None
        return retry_after(state.outcome.exception())

    def wait(state: RetryCallState) -> float:
        return max(backoff(state), asked(state) or 0.0)

    def too_long(state: RetryCallState) -> bool:
        seconds = asked(state)
        return seconds is not None and seconds > max_wait

    out_of_attempts = stop_after_attempt(max(1, attempts))

    def stop(state: RetryCallState) -> bool:
        # stop_any() is typed for stop_base instances only, not plain callables.
        return out_of_attempts(state) or too_long(state)

    return Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop,
        wait=wait,
        before=before,
        after=after,
        before_sleep=pause,
        sleep=sleep,
        reraise=True,
    )
