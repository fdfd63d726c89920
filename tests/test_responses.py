"""The provider's answers, parsed: every documented shape, tolerance, and no surprises."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dreams_sms.errors import DreamsError, GarbledResponse, OutcomeUnknown, ProviderError
from dreams_sms.provider.codes import CODES, ENDPOINTS, SUCCESS
from dreams_sms.provider.responses import (
    SenderInfo,
    SendResult,
    parse_balance,
    parse_code,
    parse_send,
    parse_sender_status,
    parse_senders,
    text_of,
)

CODE_ENDPOINTS = ("Register", "activate", "chk_user", "newsender", "senderstatus")
PARSERS = {
    "Register": parse_code,
    "activate": parse_code,
    "chk_user": parse_code,
    "newsender": parse_code,
    "senderstatus": parse_sender_status,
    "chk_balance": parse_balance,
    "usersender": parse_senders,
    "sendsms": parse_send,
    "sendsms_multi": parse_send,
}
WRAPPINGS = ["{}", " {} ", "{}\n", "{}\r\n", "\r\n{}\r\n", "\ufeff{}", "\ufeff {}\n", "\t{}\u200b"]

SENDERS_XML = """<?xml version="1.0" encoding="UTF-8"?>
<usersender>
  <sender><id>52</id><text>Dreams</text><status>Active</status><default>true</default>
    <date>2025-06-01</date><notes>main</notes></sender>
  <sender><id>53</id><text>Promo</text><status>Pending</status><default>false</default>
    <date>2025-06-02</date><notes/></sender>
</usersender>"""


def test_every_endpoint_has_a_parser():
    assert set(PARSERS) == set(ENDPOINTS)


# -- error codes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "code"), [(e, c) for e, table in CODES.items() for c in table]
)
def test_every_documented_code_raises_provider_error_for_its_endpoint(endpoint, code):
    with pytest.raises(ProviderError) as info:
        PARSERS[endpoint](endpoint, f"{code}\r\n")
    err = info.value
    assert (err.endpoint, err.code) == (endpoint, code)
    assert err.description == CODES[endpoint][code].description


@pytest.mark.parametrize("wrap", WRAPPINGS)
def test_error_codes_tolerate_whitespace_bom_and_bytes(wrap):
    body = wrap.format("-113")
    for raw in (body, body.encode("utf-8")):
        with pytest.raises(ProviderError) as info:
            parse_send("sendsms", raw)
        assert info.value.is_balance
        with pytest.raises(ProviderError) as info:
            parse_code("newsender", raw)
        assert info.value.description == "Sender text duplicated"


def test_unknown_negative_code_is_kept_not_guessed():
    with pytest.raises(ProviderError) as info:
        parse_send("sendsms", "-987")
    assert info.value.code == -987 and "Unknown code" in info.value.description


@pytest.mark.parametrize(
    "body", ["-1" + "0" * 20, "- 110", "-110-", "--110", "-\u0661\u0661\u0660", "-110.5"]
)
def test_odd_negative_bodies_are_garbled_not_codes(body):
    with pytest.raises(GarbledResponse):
        parse_send("sendsms", body)


# -- 999 endpoints -----------------------------------------------------------


@pytest.mark.parametrize("endpoint", CODE_ENDPOINTS)
@pytest.mark.parametrize("wrap", WRAPPINGS)
def test_999_is_success(endpoint, wrap):
    assert PARSERS[endpoint](endpoint, wrap.format("999")) in (SUCCESS, "Active")


def test_parse_code_tolerates_readme_json():
    assert parse_code("chk_user", '{"code": 999, "message": "Valid account"}') == SUCCESS
    assert parse_code("chk_user", '{"code": "999"}') == SUCCESS
    with pytest.raises(ProviderError) as info:
        parse_code("chk_user", '{"code": -112, "message": "Blocked"}')
    assert info.value.code == -112


@pytest.mark.parametrize(
    "body", ["", "   ", "0", "1", "998", "9990", "999 999", "OK", "<html>500</html>", '{"code": 5}']
)
@pytest.mark.parametrize("endpoint", ["Register", "activate", "chk_user", "newsender"])
def test_other_answers_on_999_endpoints_are_garbled(endpoint, body):
    with pytest.raises(GarbledResponse) as info:
        parse_code(endpoint, body)
    assert info.value.endpoint == endpoint


def test_sender_status_words_and_codes():
    assert parse_sender_status("senderstatus", "999") == "Active"
    assert parse_sender_status("senderstatus", " UnActive\n") == "UnActive"
    with pytest.raises(ProviderError) as info:
        parse_sender_status("senderstatus", "-118")
    assert info.value.description == "Sender text rejected"


# -- balance -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "value"),
    [
        ("1000000", 1_000_000.0),
        (" 123.45\n", 123.45),
        ("0", 0.0),
        ("\ufeff42\r\n", 42.0),
        (b"77", 77.0),
        ('{"balance": 123.45}', 123.45),
        ('{"balance": "9"}', 9.0),
        ('{"balance": 0}', 0.0),
    ],
)
def test_balance_shapes(body, value):
    assert parse_balance("chk_balance", body) == value


@pytest.mark.parametrize(
    "body",
    [
        "",
        "abc",
        "1,000",
        "1e5",
        "12.",
        ".5",
        "nan",
        "Infinity",
        "999 1",
        '{"balance": true}',
        '{"balance": NaN}',
        '{"balance": -1}',
        '{"credit": 5}',
        "[5]",
        "1" * 40,
    ],
)
def test_balance_garbage_is_garbled(body):
    with pytest.raises(GarbledResponse):
        parse_balance("chk_balance", body)


def test_balance_error_code():
    with pytest.raises(ProviderError) as info:
        parse_balance("chk_balance", "-110")
    assert info.value.is_account


# -- usersender --------------------------------------------------------------


def test_senders_xml():
    senders = parse_senders("usersender", SENDERS_XML)
    assert senders == [
        SenderInfo("52", "Dreams", "Active", True, "2025-06-01", "main"),
        SenderInfo("53", "Promo", "Pending", False, "2025-06-02", ""),
    ]


def test_senders_xml_tolerates_bytes_bom_missing_fields_and_empty_list():
    raw = "\ufeff\n" + "<usersender><sender><text>Alerts</text></sender></usersender>\n"
    assert parse_senders("usersender", raw.encode()) == [
        SenderInfo("", "Alerts", "", False, "", "")
    ]
    assert parse_senders("usersender", "<usersender/>") == []


def test_senders_arabic_text():
    body = "<usersender><sender><text>أحلام</text><default>1</default></sender></usersender>"
    assert parse_senders("usersender", body.encode())[0].text == "أحلام"


@pytest.mark.parametrize(
    "body",
    [
        '<!DOCTYPE x [<!ENTITY a "aaaa">]><usersender><sender><text>&a;</text></sender>'
        "</usersender>",
        '<?xml version="1.0"?><!DOCTYPE usersender SYSTEM "file:///etc/passwd"><usersender/>',
        '<!ENTITY a "b"><usersender/>',
        "<usersender><sender>",
        "<other/>",
        "<html><body>Error</body></html>",
        "usersender",
        "<usersender>&undefined;</usersender>",
        "999",
    ],
)
def test_senders_hostile_or_broken_xml_is_garbled(body):
    with pytest.raises(GarbledResponse):
        parse_senders("usersender", body)


def test_senders_no_sender_code():
    with pytest.raises(ProviderError) as info:
        parse_senders("usersender", "-117")
    assert info.value.description == "No sender for this user"


# -- sendsms / sendsms_multi -------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "Result:Success",
        "Result: Success",
        " result : success \r\n",
        "RESULT:SUCCESS",
        "Success",
        "SUCCESS\n",
        "\ufeffsuccess",
    ],
)
@pytest.mark.parametrize("endpoint", ["sendsms", "sendsms_multi"])
def test_send_success_is_the_documented_answer_in_any_case_and_spacing(endpoint, body):
    result = parse_send(endpoint, body)
    assert result == SendResult(body=text_of(body), ids={})
    assert result.all_confirmed


def test_a_whole_batch_success_confirms_every_recipient():
    result = parse_send("sendsms_multi", "Result: Success", ["966500000001", "966500000002"])
    assert result.recipients == ("966500000001", "966500000002")
    assert result.confirmed == (True, True) and result.unconfirmed == ()


@pytest.mark.parametrize(("body", "code"), [("Result: -113", -113), ("result:-118\n", -118),
                                            ("RESULT : -123", -123)])
@pytest.mark.parametrize("endpoint", ["sendsms", "sendsms_multi"])
def test_result_with_a_code_is_that_error_for_the_endpoint(endpoint, body, code):
    with pytest.raises(ProviderError) as info:
        parse_send(endpoint, body)
    assert info.value.code == code and info.value.endpoint == endpoint
    if code == -113:
        assert info.value.is_balance


@pytest.mark.parametrize(
    "body",
    [
        "Result",
        "Result:Failed",
        "Result: Fail",
        "RESULT: INVALID SENDER",
        "result: 1 message",
        "Result\n0",
        "Result: 999",
        "Result: Success.",
        "Result: Success\nResult: Success",
        "success=false",
        "success=true",
        "not Success",
        "Unsuccessful",
        '{"success": false}',
        "<html><body>Success</body></html>",
        "Error:966500000001",
        "Failed1:966500000001",
    ],
)
def test_anything_else_that_looks_like_a_result_is_garbled_never_success(body):
    with pytest.raises(GarbledResponse):
        parse_send("sendsms_multi", body)


def test_send_sms_id_lines_give_ids_per_number():
    result = parse_send("sendsms_multi", " 8812:966500000001\r\n8813:966500000002\n\n")
    assert result.ids == {"966500000001": "8812", "966500000002": "8813"}
    assert result.body == "8812:966500000001\r\n8813:966500000002"
    assert result.confirmed == (True, True)


def test_id_lines_confirm_recipient_by_recipient():
    sent = ["966500000001", "966500000002", "966500000003"]
    result = parse_send("sendsms_multi", "8812:966500000001\n8814:0500000003", sent)
    assert result.recipients == tuple(sent)
    assert result.confirmed == (True, False, True)
    assert result.unconfirmed == (1,) and not result.all_confirmed


def test_a_number_sent_twice_needs_two_ids():
    sent = ["966500000001", "966500000001"]
    assert parse_send("sendsms_multi", "1:966500000001", sent).confirmed == (True, False)
    both = parse_send("sendsms_multi", "1:966500000001\n2:+966500000001", sent)
    assert both.confirmed == (True, True)


def test_ids_for_numbers_not_sent_mean_the_answer_is_not_ours():
    with pytest.raises(GarbledResponse):
        parse_send("sendsms_multi", "1:966500000009", ["966500000001"])
    with pytest.raises(GarbledResponse):
        parse_send("sendsms_multi", "1:966500000001\n2:966500000001", ["966500000001"])


@pytest.mark.parametrize(
    "body",
    [
        "",
        "999",
        "1000",
        "0",
        "OK",
        "<html><body>502 Bad Gateway</body></html>",
        "8812:966500000001\nbroken",
        "Resul",
        "\x00\x01\x02",
        "8812:",
    ],
)
def test_other_send_answers_are_garbled_and_therefore_ambiguous(body):
    with pytest.raises(GarbledResponse) as info:
        parse_send("sendsms", body)
    assert isinstance(info.value, OutcomeUnknown) and info.value.ambiguous


def test_garbled_keeps_200_chars_without_secrets():
    body = "<html>" + "x" * 300 + "</html>"
    with pytest.raises(GarbledResponse) as info:
        parse_send("sendsms", body)
    assert info.value.body == body[:200]
    with pytest.raises(GarbledResponse) as info:
        parse_send("sendsms", "echo: user=demo&secret_key=demo-secret&to=9665")
    assert "demo-secret" not in info.value.body + str(info.value) + repr(info.value)


def test_text_of_decodes_invalid_utf8_leniently():
    assert text_of(b"\xff\xfe-110\n") == "\ufffd\ufffd-110"
    assert text_of(None) == ""


# -- properties --------------------------------------------------------------

bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    st.builds(
        "".join,
        st.lists(
            st.sampled_from(
                [
                    "-",
                    "1",
                    "9",
                    "0",
                    ".",
                    ":",
                    "\n",
                    " ",
                    "\ufeff",
                    "<",
                    ">",
                    "/",
                    "usersender",
                    "sender",
                    "Result",
                    "{",
                    "}",
                    '"balance"',
                    '"code"',
                    "<!DOCTYPE",
                    "&",
                    "\r",
                ]
            ),
            max_size=30,
        ),
    ),
)


@settings(max_examples=400, deadline=None)
@given(body=bodies, endpoint=st.sampled_from(ENDPOINTS))
def test_any_body_gives_a_result_or_a_dreams_error(body, endpoint):
    with contextlib.suppress(DreamsError):
        PARSERS[endpoint](endpoint, body)


@settings(max_examples=200, deadline=None)
@given(
    code=st.sampled_from(sorted({c for t in CODES.values() for c in t})),
    endpoint=st.sampled_from(ENDPOINTS),
    left=st.text(alphabet=" \t\r\n\ufeff\u200b\xa0", max_size=5),
    right=st.text(alphabet=" \t\r\n\ufeff\u200b\xa0", max_size=5),
)
def test_codes_survive_any_surrounding_whitespace(code, endpoint, left, right):
    with pytest.raises(ProviderError) as info:
        PARSERS[endpoint](endpoint, (left + str(code) + right).encode())
    assert info.value.code == code


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=0, max_value=10**12, places=2, allow_nan=False))
def test_any_plain_balance_round_trips(value):
    assert parse_balance("chk_balance", f" {value}\n") == pytest.approx(float(value))


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"9665[0-9]{8}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9]{0,6}[0-9][A-Za-z0-9]{0,5}", fullmatch=True).filter(
            lambda i: not i.lower().startswith(("result", "success", "error", "fail"))
        ),
        min_size=1,
        max_size=20,
    )
)
def test_any_id_listing_maps_every_number(ids):
    body = "\n".join(f"{msg_id}:{number}" for number, msg_id in ids.items())
    assert parse_send("sendsms_multi", body).ids == ids
