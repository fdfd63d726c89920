"""The beat's balance check: pause before -113, resume when the next batch is covered."""

from __future__ import annotations

import pytest
from fakes import FakeApp

from dreams_sms.config import Settings
from dreams_sms.errors import ProviderError
from dreams_sms.producer import Producer
from dreams_sms.worker import balance


class Client:
    def __init__(self, value):
        self.value = value

    def balance(self):
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


@pytest.fixture
def p(redis_url):
    return Producer(Settings(redis_url=redis_url), app=FakeApp())


def check(p, value):
    return balance.check(p.r, p.keys, p.control, Client(value), p.settings)


def test_next_batch_cost_counts_segments_of_the_costliest_sender(p):
    p.send_bulk("Dreams", [("0551234567", "x" * 200)] * 3)  # 2 GSM-7 segments each
    p.send_bulk("Alerts", [("0551234567", "مرحبا")] * 150)  # 1 UCS-2 segment each
    assert balance.next_batch_cost(p.r, p.keys, 100) == 100


def test_low_balance_pauses_before_the_provider_says_113(p):
    p.send_bulk("Dreams", [("0551234567", "hi")] * 50)
    result = check(p, 10)
    assert result.paused and not result.resumed
    assert p.control.paused() == {**p.control.paused(), "reason": "balance", "code": -113}
    assert float(p.r.get(p.keys.balance)) == 10


def test_resumes_only_a_balance_pause_once_covered(p):
    p.send_bulk("Dreams", [("0551234567", "hi")] * 50)
    p.control.pause(reason="balance", code=-113)
    assert not check(p, 49).resumed
    assert check(p, 50).resumed
    assert p.control.paused() is None
    p.control.pause(reason="account", code=-110)
    assert not check(p, 10_000).resumed  # an account problem waits for an operator
    assert p.control.paused()["reason"] == "account"


def test_a_failed_check_changes_nothing(p):
    p.send_bulk("Dreams", [("0551234567", "hi")] * 5)
    result = check(p, ProviderError("chk_balance", -110))
    assert result.balance is None and "-110" in result.error
    assert p.control.paused() is None
