"""validate: numbers, texts, options and sender names refused before queueing."""

from __future__ import annotations

import datetime as dt
import math
import random

import phonenumbers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dreams_sms.errors import InvalidNumber, InvalidOption, InvalidText, ValidationError
from dreams_sms.provider.validate import (
    SENDSMS_OPTIONS,
    _parse,
    check_options,
    check_segments,
    check_sender,
    check_text,
    check_times,
    normalize_number,
)

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
EASTERN_ARABIC_INDIC = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def is_saudi_mobile(national: str) -> bool:
    """phonenumbers' own verdict, through its full parser."""
    n = phonenumbers.parse("+966" + national)
    return phonenumbers.is_valid_number(n) and phonenumbers.number_type(n) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    "raw",
    [
        "0501234567",
        "501234567",
        "+966501234567",
        "00966501234567",
        "966501234567",
        "+966 50 123 4567",
        "050-123-4567",
        "050.123.4567",
        "(050) 123 4567",
        "+966 (50) 123-45.67",
        "(+966) 50 123 4567",
        "( +966 ) 501234567",
        "  0501234567\n",
        "٠٥٠١٢٣٤٥٦٧",
        "۰۵۰۱۲۳۴۵۶۷",
        "+٩٦٦٥٠١٢٣٤٥٦٧",
        "\u200f0501234567\u200f",  # right-to-left marks from Arabic documents
        "\ufeff0501234567",
        "050\u00a0123\u00a04567",
        "+966 0 50 123 4567",  # trunk 0 kept after the country code
        501234567,
        966501234567,
    ],
)
def test_accepted_spellings(raw):
    assert normalize_number(raw) == "966501234567"


@pytest.mark.parametrize(
    ("prefix", "ok"),
    [
        ("50", True),
        ("51", True),
        ("52", False),
        ("53", True),
        ("54", True),
        ("55", True),
        ("56", True),
        ("570", True),
        ("578", True),
        ("5790", True),
        ("5798", True),
        ("5799", False),
        ("58", True),
        ("59", True),
    ],
)
def test_mobile_ranges(prefix, ok):
    number = "0" + prefix + "0" * (9 - len(prefix))
    if ok:
        assert normalize_number(number) == "966" + number[1:]
    else:
        with pytest.raises(InvalidNumber, match="not a valid Saudi number"):
            normalize_number(number)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0112345678", "landline"),
        ("+966112345678", "landline"),
        ("8001234567", "toll-free"),
        ("920012345", "shared-cost"),
        ("+971501234567", "country code \\+971"),
        ("+201001234567", "country code \\+20"),
        ("05012345678", "not a valid"),
        ("050123456", "not a valid"),
        ("0501234", "too short"),
        ("0501234567890123", "too long"),
        ("9" * 80, "too long"),
        ("050-FLOWERS", "contains 'F'"),
        ("0501234567x", "contains 'x'"),
        ("tel:+966501234567", "contains 't'"),
        ("+966+501234567", "'\\+' is only allowed at the start"),
        ("050１２３４５６７", "contains '１'"),  # fullwidth digits: not in the accepted set
        ("", "empty"),
        ("   ", "empty"),
        ("---", "no digits"),
        (None, "not NoneType"),
        (True, "bool"),
        (False, "bool"),
        (5.01234567e8, "not float"),
        (b"0501234567", "not bytes"),
        (["0501234567"], "not list"),
        (-501234567, "negative"),
        pytest.param(10**5000, "too long", id="huge-int"),
    ],
)
def test_refused(raw, reason):
    with pytest.raises(InvalidNumber, match=reason) as info:
        normalize_number(raw)
    assert info.value.field == "to"
    assert isinstance(info.value, ValidationError)


def test_message_names_the_input_truncated():
    raw = "0501234567" + "x" * 100
    with pytest.raises(InvalidNumber) as info:
        normalize_number(raw)
    message = str(info.value)
    assert raw[:30] in message
    assert raw not in message
    assert len(message) < 120


def test_message_escapes_control_characters():
    with pytest.raises(InvalidNumber) as info:
        normalize_number("050\x1b[31m")
    assert "\x1b" not in str(info.value)


@st.composite
def mobiles(draw) -> str:
    """A national number (9 digits, 5...) phonenumbers calls a Saudi mobile."""
    national = str(draw(st.integers(500_000_000, 599_999_999)))
    assume(is_saudi_mobile(national))
    return national


SEPARATORS = [" ", "-", ".", "(", ")", "  ", " - ", "\u00a0", "\u2013"]


@st.composite
def spellings(draw, national: str) -> str:
    """One of the spellings people type for `national`, decorated at random."""
    head = draw(st.sampled_from(["0", "", "+966", "00966", "966", "+966 ", "00 966 "]))
    digits = list(national)
    out = []
    for d in digits:
        out.append(d)
        if draw(st.integers(0, 3)) == 0:
            out.append(draw(st.sampled_from(SEPARATORS)))
    text = head + "".join(out)
    script = draw(st.sampled_from([None, ARABIC_INDIC, EASTERN_ARABIC_INDIC]))
    if script:
        text = text.translate(script)
    pad = draw(st.sampled_from(["", " ", "\t", "\u200f", "\u200e", "\n"]))
    return pad + text + pad


@settings(max_examples=300, deadline=None)
@given(st.data(), mobiles())
def test_every_valid_mobile_survives_every_spelling(data, national):
    spelled = data.draw(spellings(national))
    assert normalize_number(spelled) == "966" + national


@settings(max_examples=150, deadline=None)
@given(mobiles())
def test_integer_forms(national):
    assert normalize_number(int(national)) == "966" + national
    assert normalize_number(int("966" + national)) == "966" + national


NUMBERISH = st.text(alphabet="0123456789+ -.()٠١٢٣٤٥٦٧٨٩x\u200f", max_size=20)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(max_size=80), NUMBERISH, st.integers(), st.from_regex(r"\+?(00)?9665[0-9]{8}")
    )
)
def test_only_invalid_number_escapes_and_output_is_a_fixed_point(raw):
    try:
        out = normalize_number(raw)
    except InvalidNumber as exc:
        assert exc.field == "to"
        return
    assert len(out) == 12 and out.startswith("9665") and out.isascii() and out.isdigit()
    assert normalize_number(out) == out
    assert normalize_number(int(out)) == out
    assert normalize_number("+" + out) == out


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["", "0", "966", "00966", "+966"]),
    st.from_regex(r"5[0-9]{8}", fullmatch=True),
)
def test_fast_path_agrees_with_phonenumbers_parse(head, national):
    plus = head.startswith("+")
    digits = head.lstrip("+") + national
    fast = _parse(digits, plus)
    slow = phonenumbers.parse(head + national, "SA")
    assert (fast.country_code, fast.national_number) == (slow.country_code, slow.national_number)


def test_every_mobile_block_agrees_with_phonenumbers():
    """All 10,000 blocks 5XXXX: our verdict is phonenumbers' verdict."""
    rng = random.Random(7)
    for block in range(10_000):
        national = f"5{block:04d}{rng.randrange(10_000):04d}"
        try:
            ours = normalize_number("0" + national) == "966" + national
        except InvalidNumber:
            ours = False
        assert ours == is_saudi_mobile(national), national


# --------------------------------------------------------------------- text


@pytest.mark.parametrize(
    "text",
    ["hello", "مرحبا بك", "line 1\nline 2\r\n\ttabbed", "😀 emoji", "x" * 1530, " padded "],
)
def test_text_accepted_unchanged(text):
    assert check_text(text) == text


def test_text_bytes_decoded():
    assert check_text("مرحبا".encode()) == "مرحبا"
    assert check_text(bytearray(b"hi")) == "hi"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("مرحبا".encode("cp1256"), "not valid UTF-8"),
        (b"caf\xe9", "not valid UTF-8"),
        ("", "empty \\(0 characters\\)"),
        (" \n\t ", "only whitespace \\(4 characters\\)"),
        ("x" * 1531, "1531 characters, the limit is 1530"),
        ("a\x00b", "U\\+0000 at position 1 \\(3 characters\\)"),
        ("a\x1b[31m", "U\\+001B"),
        ("\x7f" + "\x0b", "U\\+000B"),
        ("a\ud800b", "lone surrogate U\\+D800 at position 1"),
        ("\udce9", "lone surrogate"),
        (None, "not NoneType"),
        (42, "not int"),
        (["hi"], "not list"),
    ],
)
def test_text_refused(text, reason):
    with pytest.raises(InvalidText, match=reason) as info:
        check_text(text)
    assert info.value.field == "text"


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("x" * 1530, 10),  # GSM-7: 10 x 153
        ("م" * 670, 10),  # UCS-2: 10 x 67
        ("😀" * 335, 10),  # an emoji is two UTF-16 units
        ("€" * 765, 10),  # an extension character is two septets
        ("مرحبا", 1),
    ],
)
def test_texts_up_to_ten_segments_are_accepted(text, count):
    assert check_text(text) == text
    assert check_segments(text) == count


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("م" * 671, "11 segments \\(UCS-2, 671 UTF-16 units, 671 characters\\), the limit is 10"),
        ("😀" * 336, "11 segments \\(UCS-2, 672 UTF-16 units, 336 characters\\)"),
        ("€" * 766, "11 segments \\(GSM-7, 1532 septets, 766 characters\\)"),
        ("a" * 1000 + "م", "15 segments \\(UCS-2"),
    ],
)
def test_texts_over_the_segment_cap_are_refused_naming_the_count(text, reason):
    with pytest.raises(InvalidText, match=reason) as info:
        check_text(text)
    assert info.value.field == "text"


def test_segment_cap_is_a_parameter():
    assert check_text("م" * 134, max_segments=2)
    with pytest.raises(InvalidText, match=r"3 segments .* the limit is 2"):
        check_text("م" * 135, max_segments=2)
    with pytest.raises(InvalidText, match="2 segments"):
        check_text("x" * 161, max_segments=1)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=800), st.integers(min_value=1, max_value=12))
def test_segment_cap_agrees_with_the_segments_module(text, cap):
    from dreams_sms.provider.segments import segments

    try:
        check_text(text, max_length=10_000, max_segments=cap)
    except InvalidText as exc:
        assert "segments" not in str(exc) or segments(text) > cap
        return
    assert segments(text) <= cap


def test_text_max_length_is_a_parameter():
    assert check_text("x" * 10, max_length=10)
    with pytest.raises(InvalidText, match="11 characters, the limit is 10"):
        check_text("x" * 11, max_length=10)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=100), st.integers(), st.none()))
def test_check_text_raises_only_invalid_text(value):
    try:
        out = check_text(value, max_length=200)
    except InvalidText:
        return
    assert isinstance(out, str) and 0 < len(out) <= 200 and not out.isspace()
    out.encode("utf-8")


# ------------------------------------------------------------------ options


def test_sendsms_options():
    assert {
        "is_calander",
        "calander_date",
        "calander_time",
        "reminder",
        "reminder_text",
        "location_url",
    } == SENDSMS_OPTIONS


def test_full_calendar_invitation():
    out = check_options(
        {
            "is_calander": True,
            "calander_date": "2024-02-29",
            "calander_time": "23:59",
            "reminder": 30,
            "reminder_text": "تذكير",
            "location_url": "https://maps.google.com/?q=24.7,46.6",
        }
    )
    assert out == {
        "is_calander": "1",
        "calander_date": "2024-02-29",
        "calander_time": "23:59",
        "reminder": "30",
        "reminder_text": "تذكير",
        "location_url": "https://maps.google.com/?q=24.7,46.6",
    }
    assert all(isinstance(v, str) for v in out.values())


@pytest.mark.parametrize("flag", [1, True, "1", "true", " TRUE "])
def test_is_calander_truthy(flag):
    out = check_options(
        {"is_calander": flag, "calander_date": "2025-01-01", "calander_time": "09:05"}
    )
    assert out["is_calander"] == "1"


@pytest.mark.parametrize("flag", [0, False, "0", "false", None, ""])
def test_is_calander_falsy_is_omitted(flag):
    assert check_options({"is_calander": flag, "location_url": "http://x.sa"}) == {
        "location_url": "http://x.sa"
    }


def test_date_and_time_objects():
    out = check_options(
        {"is_calander": 1, "calander_date": dt.date(2025, 3, 1), "calander_time": dt.time(7, 5)}
    )
    assert out["calander_date"] == "2025-03-01" and out["calander_time"] == "07:05"


def test_nones_and_blanks_are_not_given():
    assert check_options({}) == {}
    assert check_options({k: None for k in SENDSMS_OPTIONS}) == {}
    assert check_options({"reminder": "  ", "location_url": ""}) == {}


@pytest.mark.parametrize(
    ("options", "field", "reason"),
    [
        ({"sender": "x"}, "sender", "unknown option 'sender'; allowed: is_calander, calander_date"),
        ({"is_calander": 2}, "is_calander", "must be 0 or 1"),
        ({"is_calander": "yes"}, "is_calander", "must be 0 or 1"),
        ({"is_calander": 1}, "calander_date", "calander_date is required"),
        ({"is_calander": 1, "calander_date": "2025-01-01"}, "calander_time", "is required"),
        ({"calander_date": "2025-01-01"}, "calander_date", "set is_calander=1"),
        ({"reminder": 5}, "reminder", "set is_calander=1"),
        ({"is_calander": 0, "calander_time": "10:00"}, "calander_time", "set is_calander=1"),
        (
            {"is_calander": 1, "calander_date": "2023-02-29", "calander_time": "10:00"},
            "calander_date",
            "not a real date",
        ),
        (
            {"is_calander": 1, "calander_date": "2024-13-01", "calander_time": "10:00"},
            "calander_date",
            "not a real date",
        ),
        (
            {"is_calander": 1, "calander_date": "2024-1-1", "calander_time": "10:00"},
            "calander_date",
            "YYYY-MM-DD",
        ),
        (
            {"is_calander": 1, "calander_date": "٢٠٢٤-٠١-٠١", "calander_time": "10:00"},
            "calander_date",
            "YYYY-MM-DD",
        ),
        (
            {"is_calander": 1, "calander_date": dt.datetime(2024, 1, 1), "calander_time": "10:00"},
            "calander_date",
            "YYYY-MM-DD",
        ),
        (
            {"is_calander": 1, "calander_date": "2024-01-01", "calander_time": "24:00"},
            "calander_time",
            "HH:MM",
        ),
        (
            {"is_calander": 1, "calander_date": "2024-01-01", "calander_time": "9:00"},
            "calander_time",
            "HH:MM",
        ),
        (
            {"is_calander": 1, "calander_date": "2024-01-01", "calander_time": "10:00:00"},
            "calander_time",
            "HH:MM",
        ),
        ({"reminder": -1, "is_calander": 1}, "reminder", "between 0 and"),
        ({"reminder": True}, "reminder", "not a bool"),
        ({"reminder": "15m"}, "reminder", "whole number"),
        ({"reminder": 1.5}, "reminder", "whole number"),
        ({"reminder_text": "x" * 161}, "reminder_text", "161 characters, the limit is 160"),
        ({"reminder_text": "a\x00"}, "reminder_text", "control character"),
        ({"location_url": "ftp://x.sa"}, "location_url", "http:// or https://"),
        ({"location_url": "https://"}, "location_url", "no host"),
        ({"location_url": "https://a b.sa"}, "location_url", "whitespace"),
        ({"location_url": "https://x.sa/" + "a" * 2000}, "location_url", "over 2000"),
        ({"location_url": 5}, "location_url", "must be a string"),
    ],
)
def test_options_refused(options, field, reason):
    with pytest.raises(InvalidOption, match=reason) as info:
        check_options(options)
    assert info.value.field == field


def test_options_must_be_a_mapping():
    with pytest.raises(InvalidOption):
        check_options([("is_calander", 1)])  # type: ignore[arg-type]


OPTION_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**12),
    st.text(max_size=30),
    st.sampled_from(["1", "0", "2024-02-29", "2023-02-29", "12:30", "https://x.sa/p"]),
    st.dates(),
    st.times(),
    st.floats(),
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from([*sorted(SENDSMS_OPTIONS), "junk"]), OPTION_VALUES))
def test_check_options_raises_only_invalid_option(options):
    try:
        out = check_options(options)
    except InvalidOption as exc:
        assert exc.field
        return
    assert set(out) <= SENDSMS_OPTIONS
    assert all(isinstance(v, str) and v for v in out.values())
    assert ("calander_date" in out) == ("is_calander" in out) == ("calander_time" in out)


# ------------------------------------------------------------------- sender


@pytest.mark.parametrize(
    "name", ["Dreams", "STC-Pay", "A&W", "Dr. Ahmad", "X", "ABCDEFGHIJK", "123"]
)
def test_sender_accepted(name):
    assert check_sender(name) == name


@pytest.mark.parametrize(
    "name", ["", "ABCDEFGHIJKL", "Ahmad_", "أحلام", " ACME", "ACME ", "...", None, 7, "A\nB"]
)
def test_sender_refused(name):
    with pytest.raises(ValidationError) as info:
        check_sender(name)
    assert info.value.field == "sender"


# -------------------------------------------------------------------- times

NOW = 1_800_000_000.0
UTC = dt.UTC


def test_times_accepted():
    assert check_times(NOW) == (0.0, None)
    assert check_times(NOW, send_at=NOW + 60) == (NOW + 60, None)
    assert check_times(NOW, expires_in=300) == (0.0, NOW + 300)
    aware = dt.datetime.fromtimestamp(NOW + 3600, UTC)
    assert check_times(NOW, expires_at=aware) == (0.0, NOW + 3600)
    assert check_times(NOW, send_at=NOW + 10, expires_at=NOW + 20) == (NOW + 10, NOW + 20)
    assert check_times(NOW, send_at=NOW - 5) == (NOW - 5, None)  # a little late: send now


@pytest.mark.parametrize("field", ["send_at", "expires_in", "expires_at"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), 10**400])
def test_non_finite_times_are_refused_naming_the_field(field, bad):
    with pytest.raises(ValidationError) as info:
        check_times(NOW, **{field: bad})
    assert info.value.field == field
    assert str(info.value).startswith(field) and "finite" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("send_at", NOW * 1000, "more than a year ahead"),  # milliseconds
        ("send_at", NOW + 400 * 86_400, "more than a year ahead"),
        ("send_at", 0, "more than a year in the past"),
        ("expires_in", 400 * 86_400, "more than a year"),
        ("expires_in", 0, "positive"),
        ("expires_in", -5, "positive"),
        ("expires_at", NOW, "in the future"),
        ("expires_at", NOW - 1, "in the future"),
        ("expires_at", NOW + 400 * 86_400, "more than a year ahead"),
        ("expires_at", dt.datetime(2020, 1, 1, tzinfo=UTC), "in the future"),
        ("expires_at", dt.datetime(2030, 1, 1), "timezone-aware"),
        ("send_at", "tomorrow", "expected a datetime or epoch seconds"),
        ("expires_in", True, "expected a number of seconds"),
        ("expires_in", "300", "expected a number of seconds"),
    ],
)
def test_times_out_of_range_are_refused_naming_the_field(field, value, why):
    with pytest.raises(ValidationError, match=why) as info:
        check_times(NOW, **{field: value})
    assert info.value.field == field and str(info.value).startswith(field)


def test_expiry_before_the_send_time_and_both_expiries_are_refused():
    with pytest.raises(ValidationError, match="expire before send_at") as info:
        check_times(NOW, send_at=NOW + 600, expires_in=300)
    assert info.value.field == "expires_in"
    with pytest.raises(ValidationError, match="not both") as info:
        check_times(NOW, expires_in=1, expires_at=NOW + 5)
    assert info.value.field == "expires_in"


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.none(), st.floats(), st.integers(min_value=-(10**20), max_value=10**20)),
    st.one_of(st.none(), st.floats(), st.integers(min_value=-(10**12), max_value=10**12)),
)
def test_times_give_finite_values_or_validation_errors(send_at, expires_in):
    try:
        due, expiry = check_times(NOW, send_at=send_at, expires_in=expires_in)
    except ValidationError as exc:
        assert exc.field in ("send_at", "expires_in")
        return
    assert math.isfinite(due) and (expiry is None or NOW < expiry <= NOW + 366 * 86_400)
