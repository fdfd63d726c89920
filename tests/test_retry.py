"""The retry policy reads attributes, not classes, and honours Retry-After."""

from __future__ import annotations

import pytest

from dreams_sms.errors import (
    ConfigError,
    GarbledResponse,
    HttpRefused,
    OutcomeUnknown,
    ProviderError,
    ProviderUnreachable,
    Refusal,
    ServerError,
)
from dreams_sms.provider.retry import is_transient, requeue_delay, retrying


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ProviderError("sendsms", -114), True),
        (ProviderError("sendsms", -113), False),
        (ProviderUnreachable("sendsms", "refused"), True),
        (ServerError("sendsms", "HTTP 502", 502), True),
        (HttpRefused("sendsms", "HTTP 429", 429, Refusal.RETRYABLE, 1.0), True),
        (HttpRefused("sendsms", "HTTP 404", 404, Refusal.CONFIGURATION), False),
        (HttpRefused("sendsms", "HTTP 413", 413, Refusal.TOO_LARGE), False),
        (OutcomeUnknown("sendsms", "read timeout"), False),
        (GarbledResponse("sendsms", "html"), False),
        (ConfigError("x"), False),
        (ValueError("x"), False),
    ],
)
def test_is_transient_follows_retryable_and_ambiguous(exc, transient):
    assert is_transient(exc) is transient


def test_an_error_that_says_nothing_about_ambiguity_is_not_retried():
    class Odd(ConfigError):
        retryable = True

    assert not is_transient(Odd("x"))


def _run(exc: BaseException, attempts: int = 4, max_wait: float = 8.0):
    calls, sleeps = [], []

    def attempt():
        calls.append(1)
        raise exc

    with pytest.raises(type(exc)):
        retrying(attempts, max_wait, sleep=sleeps.append)(attempt)
    return len(calls), sleeps


def test_retry_after_is_honoured_as_a_minimum_wait():
    calls, sleeps = _run(HttpRefused("sendsms", "HTTP 429", 429, Refusal.RETRYABLE, 3.0))
    assert calls == 4 and len(sleeps) == 3 and all(s >= 3.0 for s in sleeps)


def test_a_retry_after_beyond_max_wait_stops_at_once_for_the_caller_to_park():
    calls, sleeps = _run(ServerError("sendsms", "HTTP 503", 503, retry_after=600.0))
    assert calls == 1 and sleeps == []


def test_without_retry_after_the_backoff_is_unchanged():
    calls, sleeps = _run(ProviderUnreachable("sendsms", "refused"))
    assert calls == 4 and all(s <= 8.0 + 0.2 for s in sleeps)


def test_requeue_delay_takes_the_longer_of_the_setting_and_the_ask():
    refused = HttpRefused("sendsms", "HTTP 429", 429, Refusal.RETRYABLE, 600.0)
    assert requeue_delay(refused, 30.0) == 600.0
    assert requeue_delay(ProviderError("sendsms", -114), 30.0) == 30.0
    assert requeue_delay(None, 30.0) == 30.0
