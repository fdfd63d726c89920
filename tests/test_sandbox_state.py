"""The pure model and the parsers, without HTTP: clock edges, fault dice, forms."""

from __future__ import annotations

import json
import random
import threading
from datetime import datetime
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dreams_sms.sandbox import Faults, Sandbox
from dreams_sms.sandbox.faults import FaultKind, decide
from dreams_sms.sandbox.server import parse_form, parse_multipart
from dreams_sms.sandbox.state import parse_multi

AUTH = {"user": "demo", "secret_key": "demo-secret"}
RIYADH = ZoneInfo("Asia/Riyadh")


def body(outcome) -> str:
    return outcome.body.decode()


def test_the_day_is_riyadh_not_utc() -> None:
    # 20:59:30 UTC is 23:59:30 in Riyadh (UTC+3): the day ends in 30 s, not in 3 h.
    clock = datetime(2026, 3, 1, 20, 59, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    sandbox = Sandbox(clock=lambda: clock)
    sandbox.set_sender("Promo", daily_limit=1)
    send = {**AUTH, "to": "966512345678", "message": "m", "sender": "Promo"}
    assert body(sandbox.api("sendsms", send)) == "Result:Success"
    assert body(sandbox.api("sendsms", send)) == "-123"
    assert sandbox.today().isoformat() == "2026-03-01"
    sandbox.set_clock(31)
    assert sandbox.today().isoformat() == "2026-03-02"
    assert body(sandbox.api("sendsms", send)) == "Result:Success"


def test_calendar_is_judged_in_riyadh_time() -> None:
    now = datetime(2026, 3, 1, 9, 0, tzinfo=RIYADH).timestamp()
    sandbox = Sandbox(clock=lambda: now)
    send = {
        **AUTH,
        "to": "966512345678",
        "message": "m",
        "sender": "Dreams",
        "is_calander": "1",
        "calander_date": "2026-03-01",
    }
    assert body(sandbox.api("sendsms", {**send, "calander_time": "08:59"})) == "-119"
    assert body(sandbox.api("sendsms", {**send, "calander_time": "09:01"})) == "Result:Success"
    assert body(sandbox.api("sendsms", {**send, "calander_time": "09:00:30"})) == "Result:Success"


def test_concurrent_sends_never_overspend() -> None:
    sandbox = Sandbox()
    sandbox.set_balance(500)
    send = {
        **AUTH,
        "to": ",".join(f"96651000{i:04d}" for i in range(7)),
        "message": "m",
        "sender": "Dreams",
    }
    answers: list[str] = []

    def hammer() -> None:
        for _ in range(30):
            answers.append(body(sandbox.api("sendsms", send)))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = answers.count("Result:Success")
    assert accepted == 500 // 7
    assert sandbox.stats()["accepted"] == accepted * 7
    assert sandbox.state()["accounts"]["demo"]["balance"] == 500 % 7


def test_fault_rates_partition_one_draw() -> None:
    faults = Faults(
        hang_rate=0.1,
        http5xx_rate=0.2,
        garbled_rate=0.1,
        drop_after_accept_rate=0.1,
        error_rate=0.2,
    )
    rng = random.Random(3)
    kinds = [decide(faults, rng, "sendsms") for _ in range(20_000)]
    share = {
        k: sum(1 for f in kinds if f is not None and f.kind is k) / len(kinds) for k in FaultKind
    }
    expected = {
        FaultKind.HANG: 0.1,
        FaultKind.HTTP5XX: 0.2,
        FaultKind.GARBLED: 0.1,
        FaultKind.DROP: 0.1,
        FaultKind.ERROR: 0.2,
    }
    for kind, rate in expected.items():
        assert abs(share[kind] - rate) < 0.02, kind
    assert abs(kinds.count(None) / len(kinds) - 0.3) < 0.02
    assert decide(faults, rng, "chk_balance") is None


def test_burst_comes_before_the_dice_and_counts_down() -> None:
    faults = Faults(error_burst=2, error_codes=[-114])
    rng = random.Random(0)
    first, second, third = (decide(faults, rng, "sendsms_multi") for _ in range(3))
    assert (first.kind, first.code) == (FaultKind.ERROR, -114)
    assert second.kind is FaultKind.ERROR
    assert third is None
    assert faults.error_burst == 0


@pytest.mark.parametrize(
    "changes",
    [
        {"error_rate": -0.1},
        {"garbled_rate": 2},
        {"error_burst": -1},
        {"hang_s": -1},
        {"endpoints": ["sendsms", "ghost"]},
        {"error_codes": []},
        {"nope": 1},
    ],
)
def test_faults_refuse_nonsense(changes: dict) -> None:
    with pytest.raises(ValueError):
        Faults().updated(changes)


def test_faults_accept_comma_strings_and_any_case() -> None:
    faults = Faults(endpoints="SendSMS, chk_user", error_codes="-114,-118")
    assert faults.endpoints == ["sendsms", "chk_user"]
    assert faults.error_codes == [-114, -118]


@pytest.mark.parametrize(
    ("raw", "items"),
    [
        ('[[{"to": "966500000001", "message": "a"}]]', [("966500000001", "a")]),
        ('[{"to": 966500000001, "message": "a"}]', [("966500000001", "a")]),
        ('{"9665 0000 0001": "a"}', [("966500000001", "a")]),
        ("[]", None),
        ("[[]]", None),
        ("null", None),
        ('[{"to": "", "message": "a"}]', None),
    ],
)
def test_parse_multi(raw: str, items) -> None:
    assert parse_multi(raw) == items


form_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@given(st.dictionaries(form_text, form_text, max_size=6))
def test_parse_form_matches_parse_qsl(fields: dict[str, str]) -> None:
    encoded = urlencode(fields)
    assert parse_form(encoded.encode()) == dict(parse_qsl(encoded, keep_blank_values=True))
    assert parse_form(encoded.encode()) == fields


@pytest.mark.parametrize("raw", [b"a=100%", b"a=%zz&b=1", b"a=%4", b"a=x\\%41", b"a&b=", b"=v"])
def test_parse_form_odd_input_matches_parse_qsl(raw: bytes) -> None:
    assert parse_form(raw) == dict(parse_qsl(raw.decode(), keep_blank_values=True))


def test_parse_multipart_utf8_and_quoted_boundary() -> None:
    payload = json.dumps({"966500000001": "مرحبا"}, ensure_ascii=False)
    raw = (
        '--XyZ\r\nContent-Disposition: form-data; name="to"\r\n\r\n'
        f"{payload}\r\n"
        '--XyZ\r\nContent-Disposition: form-data; name="user"\r\n\r\ndemo\r\n'
        "--XyZ--\r\n"
    ).encode()
    assert parse_multipart(raw, 'multipart/form-data; boundary="XyZ"') == {
        "to": payload,
        "user": "demo",
    }
    assert parse_multipart(raw, "multipart/form-data") == {}
