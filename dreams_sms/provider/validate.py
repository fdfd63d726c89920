"""Checks applied to every recipient, text, option and sender before queueing.

Pure functions, no I/O: the same rules run in the CLI, the bulk file reader
and the worker, so a message refused here never reaches the provider (which
would charge for, or silently drop, what it cannot deliver).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat, PhoneNumberType

from dreams_sms.errors import InvalidNumber, InvalidOption, InvalidText, ValidationError
from dreams_sms.provider import segments as seg

DEFAULT_MAX_TEXT_LENGTH = 1_530
#: The provider bills per segment; ten is already a long, expensive message.
DEFAULT_MAX_SEGMENTS = 10
REMINDER_TEXT_MAX = 160
LOCATION_URL_MAX = 2_000
REMINDER_MAX = 999_999_999  # minutes; only there to keep absurd values out
#: How far from now a send time or an expiry may be. Further out is a mistake
#: (milliseconds given as seconds, a year typed wrong), not a plan.
TIME_HORIZON = 366 * 86_400.0

# ---------------------------------------------------------------- numbers

# Copy-pasted numbers (Excel, WhatsApp, Arabic documents) carry direction
# marks and BOMs that are invisible to the operator: drop them, nothing else.
# Arabic-Indic and Eastern Arabic-Indic digits become ASCII ones.
_CLEAN = str.maketrans(
    "٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹",
    "0123456789" * 2,
    "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff",
)
_SEPARATORS = frozenset(" \t\u00a0\u2009\u202f().-\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
_ASCII_DIGITS = frozenset("0123456789")
_MAX_RAW = 64  # characters; a phone number with separators is far shorter
_SAUDI_MOBILE = re.compile(r"9665[0-9]{8}")
_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
_TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.TOLL_FREE: "toll-free",
    PhoneNumberType.PREMIUM_RATE: "premium-rate",
    PhoneNumberType.SHARED_COST: "shared-cost",
    PhoneNumberType.VOIP: "VoIP",
    PhoneNumberType.UAN: "universal access (UAN)",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.VOICEMAIL: "voicemail",
}


# The usual spellings, whose parse result is certain: 05…, 5…, 9665…, 009665…
# (no '+') and +9665…. Building the PhoneNumber directly skips most of the cost
# of phonenumbers.parse (a million-row file spends its time here); validity
# is still decided by phonenumbers below, and a test checks parse agrees.
_PLAIN_SHAPE = re.compile(r"(?:0|966|00966)?(5[0-9]{8})")
_PLUS_SHAPE = re.compile(r"966(5[0-9]{8})")


def _parse(digits: str, plus: bool) -> PhoneNumber:
    """`digits` (with a leading '+' if `plus`) as phonenumbers reads it in region SA."""
    shape = (_PLUS_SHAPE if plus else _PLAIN_SHAPE).fullmatch(digits)
    if shape:
        return PhoneNumber(country_code=966, national_number=int(shape.group(1)))
    return phonenumbers.parse(("+" if plus else "") + digits, "SA")


def _shown(raw: object, limit: int = 40) -> str:
    """The input as it may appear in a message: repr'd (no control characters
    reach a terminal or log) and truncated."""
    if isinstance(raw, int):
        return str(raw) if raw.bit_length() < 128 else f"<{raw.bit_length()}-bit int>"
    if not isinstance(raw, str):
        return f"<{type(raw).__name__}>"
    text = raw
    if len(text) > limit:
        return repr(text[: limit - 3]) + "..."
    return repr(text)


def _bad_number(raw: object, reason: str) -> InvalidNumber:
    return InvalidNumber(f"invalid number {_shown(raw)}: {reason}", field="to")


# The plain spellings (05…, 5…, 9665…, +9665…, 009665…) of a number that
# libphonenumber's own Saudi mobile pattern accepts: checked with two regexes
# instead of a full parse, which is most of the cost of enqueueing a message.
_PLAIN = re.compile(r"(?:\+966|00966|966|0)?(5[0-9]{8})", re.ASCII)


def _sa_mobile_pattern() -> str:
    """libphonenumber's national number pattern for Saudi mobiles."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region("SA")
    # Optional in phonenumbers' types; always present for SA in its metadata.
    pattern = meta.mobile.national_number_pattern if meta and meta.mobile else None
    if not pattern:
        raise RuntimeError("phonenumbers' metadata has no Saudi mobile pattern")
    return str(pattern)


_SA_MOBILE = re.compile(_sa_mobile_pattern(), re.ASCII)


def normalize_number(raw: str | int) -> str:
    """A Saudi mobile number in the provider's `9665XXXXXXXX` form.

    Accepts the spellings people actually type (local `05…`, bare `5…`,
    `+966`, `00966`, `966`, separators, Arabic-Indic digits); anything that is
    not a valid Saudi mobile raises `InvalidNumber` saying why.
    """
    if type(raw) is str and (m := _PLAIN.fullmatch(raw)) and _SA_MOBILE.fullmatch(m[1]):
        return "966" + m[1]
    if isinstance(raw, bool):
        raise _bad_number(raw, "a bool is not a phone number")
    if isinstance(raw, int):
        if raw < 0:
            raise _bad_number(raw, "negative")
        if raw >= 10**15:
            raise _bad_number(raw, "too long (more than 15 digits)")
        text = str(raw)
    elif isinstance(raw, str):
        text = raw
    else:
        raise _bad_number(raw, f"expected str or int, not {type(raw).__name__}")
    if len(text) > _MAX_RAW:
        raise _bad_number(raw, f"too long ({len(text)} characters)")

    text = text.translate(_CLEAN).strip()
    if not text:
        raise _bad_number(raw, "empty")
    opened = text.lstrip(" (")  # "(+966) 50 …" is a common spelling too
    plus = opened.startswith("+")
    body = text.replace("+", "", 1) if plus else text
    for ch in body:
        if ch == "+":
            raise _bad_number(raw, "'+' is only allowed at the start")
        if ch not in _ASCII_DIGITS and ch not in _SEPARATORS:
            raise _bad_number(
                raw, f"contains {ch!r}: only digits, spaces, '+', '-', '.', '(' and ')' allowed"
            )
    digits = "".join(ch for ch in body if ch in _ASCII_DIGITS)
    if not digits:
        raise _bad_number(raw, "no digits")
    if len(digits) > 15:
        raise _bad_number(raw, f"too long ({len(digits)} digits)")
    if len(digits) < 9:
        raise _bad_number(raw, f"too short ({len(digits)} digits)")

    try:
        number = _parse(digits, plus)
    except NumberParseException as exc:
        raise _bad_number(raw, f"not a phone number ({exc._msg})") from None
    if number.country_code != 966:
        raise _bad_number(raw, f"not a Saudi number (country code +{number.country_code})")
    # number_type is UNKNOWN for any number is_valid_number refuses, so a
    # mobile type implies validity; is_valid_number only words the refusal.
    kind = phonenumbers.number_type(number)
    if kind not in _MOBILE_TYPES:
        if not phonenumbers.is_valid_number(number):
            raise _bad_number(raw, "not a valid Saudi number (mobiles look like 05XXXXXXXX)")
        name = _TYPE_NAMES.get(kind, "non-mobile")
        raise _bad_number(raw, f"a Saudi {name} number, not a mobile")
    out = phonenumbers.format_number(number, PhoneNumberFormat.E164).lstrip("+")
    if not _SAUDI_MOBILE.fullmatch(out):  # belt and braces: the provider wants exactly this
        raise _bad_number(raw, "not a Saudi mobile number")
    return out


# ------------------------------------------------------------------- text

# C0 controls except \t \n \r: they corrupt handsets and the provider's CSV.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def check_text(
    text: object,
    *,
    max_length: int = DEFAULT_MAX_TEXT_LENGTH,
    max_segments: int = DEFAULT_MAX_SEGMENTS,
) -> str:
    """The message text, unchanged, if the provider can carry it.

    Bytes are accepted when valid UTF-8 (files and queues hand us bytes);
    everything else that is not a str is refused rather than str()'d. The cap
    that matters is `max_segments` (DREAMS_MAX_SEGMENTS): 1,530 Latin characters
    are 10 segments but 1,530 Arabic ones are 23, each billed. `max_length`
    (characters) stays as a cheap first guard.
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidText(
                f"text is not valid UTF-8 (byte {exc.start} of {len(text)})", field="text"
            ) from None
    if not isinstance(text, str):
        raise InvalidText(f"text must be a string, not {type(text).__name__}", field="text")
    n = len(text)
    if n == 0:
        raise InvalidText("text is empty (0 characters)", field="text")
    if text.isspace():
        raise InvalidText(f"text is only whitespace ({n} characters)", field="text")
    if n > max_length:
        raise InvalidText(
            f"text is too long: {n} characters, the limit is {max_length}", field="text"
        )
    bad = _CONTROL.search(text)
    if bad:
        raise InvalidText(
            f"text contains control character U+{ord(bad.group()):04X} at position "
            f"{bad.start()} ({n} characters)",
            field="text",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidText(
            f"text contains a lone surrogate U+{ord(text[exc.start]):04X} at position "
            f"{exc.start} ({n} characters)",
            field="text",
        ) from None
    if not _surely_fits(n, max_segments):
        check_segments(text, max_segments)
    return text


def check_segments(text: str, max_segments: int = DEFAULT_MAX_SEGMENTS) -> int:
    """The segments `text` costs, or `InvalidText` naming the count when over the cap.

    Counted by `segments.segments`, as the provider bills: GSM-7 160/153 septets
    (extension characters count two), otherwise UCS-2 70/67 UTF-16 units (an
    emoji counts two).
    """
    count = seg.segments(text)
    if count > max_segments:
        if seg.is_gsm7(text):
            size = f"GSM-7, {seg.septets(text)} septets"
        else:
            size = f"UCS-2, {seg.ucs2_units(text)} UTF-16 units"
        raise InvalidText(
            f"text is too long: {count} segments ({size}, {len(text)} characters), "
            f"the limit is {max_segments}",
            field="text",
        )
    return count


def _surely_fits(n: int, max_segments: int) -> bool:
    """True when n characters fit the cap whatever they are (2 UCS-2 units at
    worst, 67 a part), so most texts skip the count."""
    worst = 2 * n
    return worst <= seg.UCS2_SINGLE or -(-worst // seg.UCS2_PART) <= max_segments


# ---------------------------------------------------------------- options

_OPTION_ORDER = (
    "is_calander",
    "calander_date",
    "calander_time",
    "reminder",
    "reminder_text",
    "location_url",
)
#: The optional sendsms form fields we pass through (the provider's spelling).
SENDSMS_OPTIONS: frozenset[str] = frozenset(_OPTION_ORDER)
#: Fields that only mean something on a calendar invitation.
CALENDAR_FIELDS: frozenset[str] = frozenset(
    {"calander_date", "calander_time", "reminder", "reminder_text"}
)

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
_UINT = re.compile(r"[0-9]{1,9}")
_URL_BAD_CHAR = re.compile(r"[\x00-\x20\x7f-\x9f]")


def _opt_error(key: str, value: object, why: str) -> InvalidOption:
    return InvalidOption(f"{key}={_shown(value)}: {why}", field=key)


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return value.strip().lower() in ("1", "true")
    raise _opt_error("is_calander", value, "must be 0 or 1")


def _date(value: object) -> str:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
        raise _opt_error("calander_date", value, "must be a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise _opt_error("calander_date", value, "is not a real date") from None


def _time(value: object) -> str:
    if isinstance(value, dt.time) and not value.second and not value.microsecond:
        return value.strftime("%H:%M")
    if not isinstance(value, str) or not _TIME.fullmatch(value.strip()):
        raise _opt_error("calander_time", value, "must be a 24-hour time as HH:MM")
    return value.strip()


def _reminder(value: object) -> str:
    if isinstance(value, bool):
        raise _opt_error("reminder", value, "must be a whole number of minutes, not a bool")
    if isinstance(value, int):
        minutes = value
    elif isinstance(value, str) and _UINT.fullmatch(value.strip()):
        minutes = int(value.strip())
    else:
        raise _opt_error("reminder", value, "must be a whole number of minutes >= 0")
    if not 0 <= minutes <= REMINDER_MAX:
        raise _opt_error("reminder", value, f"must be between 0 and {REMINDER_MAX} minutes")
    return str(minutes)


def _reminder_text(value: object) -> str:
    try:
        return check_text(value, max_length=REMINDER_TEXT_MAX)
    except InvalidText as exc:
        raise InvalidOption(f"reminder_{exc}", field="reminder_text") from None


def _location_url(value: object) -> str:
    if not isinstance(value, str):
        raise _opt_error("location_url", value, "must be a string")
    url = value.strip()
    if len(url) > LOCATION_URL_MAX:
        why = f"is {len(url)} characters, over {LOCATION_URL_MAX}"
        raise _opt_error("location_url", value, why)
    if not url.lower().startswith(("http://", "https://")):
        raise _opt_error("location_url", value, "must start with http:// or https://")
    if _URL_BAD_CHAR.search(url):
        raise _opt_error("location_url", value, "contains whitespace or control characters")
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    if not host:
        raise _opt_error("location_url", value, "has no host")
    return url


_CLEANERS = {
    "calander_date": _date,
    "calander_time": _time,
    "reminder": _reminder,
    "reminder_text": _reminder_text,
    "location_url": _location_url,
}


def check_options(options: Mapping[str, object]) -> dict[str, str]:
    """The sendsms options as form values, or `InvalidOption`.

    None and empty strings mean "not given" (CSV cells, web forms), and a
    false `is_calander` is dropped: the provider only needs the fields set.
    """
    if not isinstance(options, Mapping):
        raise InvalidOption(
            f"options must be a mapping, not {type(options).__name__}", field="options"
        )
    allowed = ", ".join(_OPTION_ORDER)
    given: dict[str, object] = {}
    for key, value in options.items():
        if not isinstance(key, str) or key not in SENDSMS_OPTIONS:
            raise InvalidOption(
                f"unknown option {_shown(key)}; allowed: {allowed}", field=str(key)[:40]
            )
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        given[key] = value

    out: dict[str, str] = {}
    calendar = "is_calander" in given and _flag(given["is_calander"])
    if calendar:
        out["is_calander"] = "1"
    for key in _OPTION_ORDER[1:]:
        if key in given:
            out[key] = _CLEANERS[key](given[key])
    if calendar:
        for key in ("calander_date", "calander_time"):
            if key not in out:
                raise InvalidOption(f"{key} is required when is_calander=1", field=key)
    else:
        stray = [k for k in _OPTION_ORDER if k in out and k in CALENDAR_FIELDS]
        if stray:
            raise InvalidOption(
                f"{', '.join(stray)}: only for calendar invitations, set is_calander=1",
                field=stray[0],
            )
    return out


# ------------------------------------------------------------------ times


def check_times(
    now: float,
    *,
    send_at: object = None,
    expires_in: object = None,
    expires_at: object = None,
) -> tuple[float, float | None]:
    """(due, expiry) in epoch seconds for a message, or `ValidationError` naming the field.

    `send_at` and `expires_at` are timezone-aware datetimes or epoch seconds,
    `expires_in` seconds from now. Every value must be a finite number within
    `TIME_HORIZON` (a year) of now: NaN would make every comparison false and
    the message never due nor expired; a send time in milliseconds would park
    it for fifty thousand years. An expiry must be in the future and after the
    send time. `due` is 0.0 when `send_at` is not given (send now).
    """
    due = 0.0
    if send_at is not None:
        due = _epoch(send_at, "send_at")
        if due > now + TIME_HORIZON:
            raise _time_error("send_at", send_at, "is more than a year ahead")
        if due < now - TIME_HORIZON:
            raise _time_error("send_at", send_at, "is more than a year in the past")
    if expires_in is not None and expires_at is not None:
        raise ValidationError("give expires_in or expires_at, not both", field="expires_in")
    expiry: float | None = None
    if expires_in is not None:
        seconds = _seconds(expires_in, "expires_in")
        if seconds <= 0 or now + seconds <= now:
            raise _time_error("expires_in", expires_in, "must be a positive number of seconds")
        if seconds > TIME_HORIZON:
            raise _time_error("expires_in", expires_in, "is more than a year")
        expiry = now + seconds
        field = "expires_in"
    elif expires_at is not None:
        expiry = _epoch(expires_at, "expires_at")
        field = "expires_at"
        if expiry <= now:
            raise _time_error("expires_at", expires_at, "must be in the future")
        if expiry > now + TIME_HORIZON:
            raise _time_error("expires_at", expires_at, "is more than a year ahead")
    if expiry is not None and send_at is not None and expiry <= due:
        raise ValidationError(
            f"{field}: the message would expire before send_at, when it is due", field=field
        )
    return due, expiry


def _epoch(value: object, field: str) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationError(f"{field}: datetimes must be timezone-aware", field=field)
        return value.timestamp()
    return _seconds(value, field, what="a datetime or epoch seconds")


def _seconds(value: object, field: str, what: str = "a number of seconds") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field}: expected {what}, not {type(value).__name__}",
                              field=field)
    try:
        seconds = float(value)
    except OverflowError:  # an int too large for a float
        seconds = math.inf
    if not math.isfinite(seconds):
        raise _time_error(field, value, "must be a finite number")
    return seconds


def _time_error(field: str, value: object, why: str) -> ValidationError:
    shown = value.isoformat() if isinstance(value, dt.datetime) else _shown(value)
    if isinstance(value, float):
        shown = repr(value)
    return ValidationError(f"{field}={shown}: {why}", field=field)


# ----------------------------------------------------------------- sender

_SENDER = re.compile(r"[A-Za-z0-9 .&-]{1,11}")


def check_sender(name: object) -> str:
    """A sender name the provider can register: 1-11 of [A-Za-z0-9 .-&]."""
    if not isinstance(name, str):
        raise ValidationError(f"sender must be a string, not {type(name).__name__}", field="sender")
    if not _SENDER.fullmatch(name):
        raise ValidationError(
            f"sender {_shown(name)} ({len(name)} characters) must be 1-11 ASCII letters, "
            "digits, spaces, '.', '-' or '&'",
            field="sender",
        )
    if name != name.strip() or not any(c.isalnum() for c in name):
        raise ValidationError(
            f"sender {_shown(name)} needs a letter or digit and no leading/trailing spaces",
            field="sender",
        )
    return name
