"""The retry policy: only errors where the provider certainly did not accept.

-114/-118, connect failures and 5xx are retried with exponential backoff and
jitter; an ambiguous failure (read timeout, dropped connection) is never
retried here, because resending it could deliver the message twice.
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

from .errors import ProviderError, TransportError


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ProviderError):
        return exc.retryable
    if isinstance(exc, TransportError):
        return exc.retryable and not exc.ambiguous
    return False


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
    def before(_: RetryCallState) -> None:
        if before_attempt is not None:
            before_attempt()

    def after(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None and state.outcome.failed:
            on_retry(state.outcome.exception())

    def pause(_: RetryCallState) -> None:
        if before_sleep is not None:
            before_sleep()

    return Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential_jitter(multiplier=initial, max=max_wait, jitter=initial),
        before=before,
        after=after,
        before_sleep=pause,
        sleep=sleep,
        reraise=True,
    )
