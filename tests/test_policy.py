"""One table from a failed call to what the drain does."""

from __future__ import annotations

from dreams_sms.errors import (
    GarbledResponse,
    HttpRefused,
    OutcomeUnknown,
    ProviderError,
    ProviderUnreachable,
    Refusal,
    ServerError,
)
from dreams_sms.provider.codes import Kind
from dreams_sms.worker.policy import BY_KIND, Action, decide


def test_every_kind_of_provider_code_has_an_action():
    assert set(BY_KIND) == set(Kind)


def test_the_table():
    multi = "sendsms_multi"
    cases = [
        (ProviderError(multi, -113), 100, Action.PAUSE, "balance"),
        (ProviderError(multi, -110), 100, Action.PAUSE, "account"),
        (ProviderError(multi, -114), 100, Action.RETRY_LATER, ""),
        (ProviderError(multi, -123), 100, Action.CLOSE_SENDER, ""),
        (ProviderError(multi, -117), 100, Action.SPLIT, ""),
        (ProviderError(multi, -117), 1, Action.FAIL, ""),
        (ProviderError(multi, -116), 100, Action.FAIL, ""),
        (OutcomeUnknown(multi, "read timeout"), 100, Action.HOLD, ""),
        (GarbledResponse(multi, "html"), 100, Action.HOLD, ""),
        (ServerError(multi, "503", 503), 100, Action.RETRY_LATER, ""),
        (ProviderUnreachable(multi, "refused"), 100, Action.RETRY_LATER, ""),
        (HttpRefused(multi, "429", 429, Refusal.RETRYABLE, retry_after=2), 100,
         Action.RETRY_LATER, ""),
        (HttpRefused(multi, "404", 404, Refusal.CONFIGURATION), 100, Action.PAUSE, "http"),
        (HttpRefused(multi, "413", 413, Refusal.TOO_LARGE), 100, Action.SPLIT, ""),
        (HttpRefused(multi, "413", 413, Refusal.TOO_LARGE), 1, Action.FAIL, ""),
    ]
    for err, batch, action, reason in cases:
        d = decide(err, batch)
        assert (d.action, d.reason) == (action, reason), (err, batch, d)
