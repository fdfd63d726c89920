"""Secrets never reach a log line, whatever shape the text has."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dreams_sms.provider.redact import REQUEST_SECRET_NAMES, SECRET_NAMES, redact, redact_url

SECRET = "s3cr3t-Value.9"


@pytest.mark.parametrize(
    "text",
    [
        f"user=demo&secret_key={SECRET}&to=966500000001",
        f"b'user=demo&password={SECRET}'",
        f"grant_type=refresh_token&refresh_token={SECRET}&client_id=c&client_secret={SECRET}",
        f"https://host/api?user=a&token={SECRET}",
        f"user=demo&secret_key=x&code={SECRET}",
        f"code={SECRET}&user=demo",
        f"https://h/api/activate?code={SECRET}",
        f"{{'code': '4821{SECRET}'}}",
        f"Proxy-Authorization: Basic {SECRET}",
        f"X-Api-Key: {SECRET}",
        f"{{'X-Api-Key': '{SECRET}'}}",
        f"legacy ?user=a&pass={SECRET}&to=1",
        f'{{"access_token": "{SECRET}", "token_type": "Bearer", "expires_in": 3600}}',
        f'{{"refresh_token":"{SECRET}"}}',
        f"{{'client_secret': '{SECRET}', 'client_id': 'c'}}",
        f'{{"password": 12345{SECRET}}}',
        f"Authorization: Bearer {SECRET}",
        f"{{'Authorization': 'Bearer {SECRET}'}}",
        f"authorization={SECRET}",
        f"Authorization: Basic {SECRET}",
        f"redis://:{SECRET}@127.0.0.1:6379/0",
        f"rediss://default:{SECRET}@cache.example:6380/1",
        f"failed to reach https://user:{SECRET}@proxy:3128 today",
    ],
)
def test_secret_values_are_masked(text):
    out = redact(text)
    assert SECRET not in out
    assert "***" in out


def test_what_is_not_secret_stays_readable():
    text = "user=demo&to=966500000001&message=hi&sender=Dreams"
    assert redact(text) == text
    assert redact("Token revoked successfully") == "Token revoked successfully"
    assert redact('{"token_type": "Bearer", "expires_in": 3600}') == (
        '{"token_type": "Bearer", "expires_in": 3600}'
    )
    # a numeric `code` is the provider's answer code, not an activation code
    assert redact('{"code": 999, "message": "Valid account"}') == (
        '{"code": 999, "message": "Valid account"}'
    )
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_names_keep_their_structure():
    assert redact("a=1&secret_key=abc&b=2") == "a=1&secret_key=***&b=2"
    assert redact("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact("rediss://u:pw@h/0") == "rediss://u:***@h/0"
    assert redact("Authorization: Bearer abc") == "Authorization: Bearer ***"
    assert redact('{"activation": 1, "code": "A1B2"}') == '{"activation": 1, "code": "***"}'


def test_known_literal_values_are_masked_in_any_shape():
    out = redact(f"the key was {SECRET}, really", secrets=[SECRET, "", "ab"])
    assert out == "the key was ***, really"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        (
            "rediss://user:pw@host/0?ssl_cert_reqs=none",
            "rediss://user:***@host/0?ssl_cert_reqs=none",
        ),
        ("https://x.sa/api?user=a&secret_key=k", "https://x.sa/api?user=a&secret_key=***"),
        ("https://www.dreams.sa/index.php/api", "https://www.dreams.sa/index.php/api"),
        ("redis://user@host/0", "redis://user@host/0"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_redact_url_survives_unparsable_input():
    assert "pw" not in redact_url("http://u:pw@[::1")


@given(
    name=st.sampled_from(REQUEST_SECRET_NAMES),
    value=st.from_regex(r"[A-Za-z0-9._~+/-]{4,40}", fullmatch=True),
    prefix=st.sampled_from(["", "user=u&", "x=1&", "https://h/api?"]),
)
def test_any_form_secret_is_masked(name, value, prefix):
    assert value not in redact(f"{prefix}{name}={value}&to=1").replace(f"{name}=", "")
    assert value not in redact(f"user=u&{name}={value}").replace(f"{name}=", "")


@given(
    name=st.sampled_from(SECRET_NAMES),
    value=st.from_regex(r"[A-Za-z0-9._~+/-]{4,40}", fullmatch=True),
)
def test_secret_names_are_masked_in_log_lines_too(name, value):
    assert value not in redact(f"call failed {name}={value} status=500").replace(f"{name}=", "")


@pytest.mark.parametrize(
    "line",
    [
        "ALERT sending paused reason=balance code=-113: Not enough balance",
        "ALERT sending paused reason=account code=-124: IP not allowed",
        "batch sender=Dreams size=100 outcome=balance code=-113 latency=0.051s",
        "batch sender=Dreams size=3 outcome=transport code=http429 latency=0.010s",
        "batch sender=Dreams size=3 outcome=sent code=- latency=0.010s",
        "sendsms answered -118: Unwanted error status=200 count=100 tokens=3",
        "HTTP 429 Retry-After 120 status=429 sent=10 failed=2",
        '{"code": -113, "status": "held", "count": 4}',
        "{'code': '-113', 'status': 429}",
    ],
)
def test_codes_statuses_and_counts_stay_visible(line):
    assert redact(line) == line


def test_the_log_filter_keeps_codes_and_masks_secrets():
    import logging

    from dreams_sms.provider.redact import RedactingFilter

    record = logging.LogRecord("x", logging.ERROR, __file__, 1,
                               "ALERT sending paused reason=%s code=%s: %s",
                               ("balance", -113, "Not enough balance"), None)
    assert RedactingFilter().filter(record)
    shown = record.getMessage()
    assert shown == "ALERT sending paused reason=balance code=-113: Not enough balance"
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, "body %s",
                               ("user=u&secret_key=abc123xyz&code=4821",), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "body user=u&secret_key=***&code=***"


@given(st.text(max_size=200))
def test_redact_never_raises(text):
    assert isinstance(redact(text), str)
    assert isinstance(redact_url(text), str)


def test_logging_filter_hides_secrets_in_any_record():
    import logging

    from dreams_sms.provider.redact import RedactingFilter

    record = logging.LogRecord("x", logging.INFO, __file__, 1,
                               "posting %s to %s", ("user=u&secret_key=abc123xyz",
                                                     "redis://:hunter22@h:6379/0"), None)
    assert RedactingFilter().filter(record)
    text = record.getMessage()
    assert "abc123xyz" not in text and "hunter22" not in text
