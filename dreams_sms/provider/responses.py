"""Pure parsers for the provider's answers: body in, value or `DreamsError` out.

The provider documents codes, not bodies, and public clients disagree about
what a success looks like. So every parser is tolerant of the shapes seen in
the wild and strict about everything else: an answer that fits no known shape
is a `GarbledResponse`, never a guess and never another exception type.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from dreams_sms.errors import GarbledResponse, ProviderError
from dreams_sms.provider.codes import SUCCESS
from dreams_sms.provider.redact import redact

#: Stripped around a body besides whitespace: BOM and zero-width spaces.
_INVISIBLE = "\ufeff\u200b\u2060"
#: An error code. Bounded so that int() can never blow up on a huge number.
_ERROR = re.compile(r"-[0-9]{1,9}", re.ASCII)
_NUMBER = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,15})?", re.ASCII)
#: `SMS_ID:mobile`, the per-recipient success line seen in the package README.
#: The id must hold a digit, so `Error:9665...` or `Failed:9665...` is never an id.
_ID_LINE = re.compile(r"(?=[\w.-]*[0-9])([A-Za-z0-9][\w.-]{0,63}):\+?([0-9]{5,20})", re.ASCII)
_NOT_AN_ID = re.compile(r"(?:result|success|error|fail|invalid|reject)", re.I)
#: The documented success, `Result: Success`, and the legacy bare `Success`.
_SEND_OK = re.compile(r"(?:result\s*:\s*)?success", re.I | re.ASCII)
#: `Result: -113`: an error code wrapped like a success.
_RESULT_CODE = re.compile(r"result\s*:\s*(-[0-9]{1,9})", re.I | re.ASCII)
_SENDER_STATES = {"active", "unactive", "inactive", "pending", "rejected"}
_SNIPPET = 200

Body = str | bytes


@dataclass(frozen=True, slots=True)
class SenderInfo:
    """One `<sender>` of a usersender answer."""

    id: str
    text: str
    status: str
    default: bool
    date: str
    notes: str


@dataclass(frozen=True, slots=True)
class SendResult:
    """A send the provider answered as accepted, recipient by recipient.

    `body` is kept verbatim for the audit trail; `ids` maps number -> provider
    message id when the answer carried them. `recipients` are the numbers sent,
    in order, and `confirmed[i]` says whether the answer confirms
    `recipients[i]`: a whole-batch `Result: Success` confirms all of them, an
    `id:number` listing only those it names. A recipient left unconfirmed may
    or may not have been accepted, so the caller must treat it as unknown
    (hold it), never as sent and never as safe to resend.
    """

    body: str
    ids: dict[str, str] = field(default_factory=dict)
    recipients: tuple[str, ...] = ()
    confirmed: tuple[bool, ...] = ()

    @property
    def all_confirmed(self) -> bool:
        return all(self.confirmed)

    @property
    def unconfirmed(self) -> tuple[int, ...]:
        """Indexes (into `recipients`, i.e. the batch) the answer does not confirm."""
        return tuple(i for i, ok in enumerate(self.confirmed) if not ok)


def text_of(body: Body | None) -> str:
    """The body as stripped text; bytes are decoded leniently so parsing never raises."""
    if body is None:
        return ""
    if isinstance(body, bytes | bytearray | memoryview):
        body = bytes(body).decode("utf-8", errors="replace")
    elif not isinstance(body, str):
        body = str(body)
    return _strip(body)


def snippet(text: str) -> str:
    """What of a body may travel in an exception: short and without secrets."""
    return redact(text[:_SNIPPET])


def garbled(endpoint: str, detail: str, text: str) -> GarbledResponse:
    return GarbledResponse(endpoint, detail, body=snippet(text))


def raise_for_code(endpoint: str, text: str) -> None:
    """Raise `ProviderError` when the (stripped) body is a bare negative code."""
    if _ERROR.fullmatch(text):
        raise ProviderError(endpoint, int(text), body=text)


def parse_code(endpoint: str, body: Body | None) -> int:
    """For endpoints that answer `999` or an error code; returns `SUCCESS`."""
    text = text_of(body)
    raise_for_code(endpoint, text)
    if text == str(SUCCESS):
        return SUCCESS
    code = _json_code(text)
    if code is not None:
        raise_for_code(endpoint, str(code))
        if code == SUCCESS:
            return SUCCESS
    raise garbled(endpoint, "expected 999 or an error code", text)


def parse_sender_status(endpoint: str, body: Body | None) -> str:
    """`999` means Active; a bare status word (Active, UnActive, ...) is taken as is."""
    text = text_of(body)
    if text.lower() in _SENDER_STATES:
        return text
    parse_code(endpoint, text)
    return "Active"


def parse_balance(endpoint: str, body: Body | None) -> float:
    """A bare number, or JSON `{"balance": n}` as the package README shows."""
    text = text_of(body)
    raise_for_code(endpoint, text)
    if _NUMBER.fullmatch(text):
        return float(text)
    value = _json_field(text, "balance")
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    if (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0):
        return float(value)
    raise garbled(endpoint, "expected a balance", text)


def parse_senders(endpoint: str, body: Body | None) -> list[SenderInfo]:
    """The `<usersender>` XML. DOCTYPE/ENTITY bodies are refused, not expanded."""
    text = text_of(body)
    raise_for_code(endpoint, text)
    if not text.startswith("<") or re.search(r"<!\s*(?:DOCTYPE|ENTITY)", text, re.I):
        raise garbled(endpoint, "expected <usersender> XML", text)
    try:
        root = ET.fromstring(text)  # noqa: S314 - no DTD can reach this line
    except Exception:  # ParseError, ValueError on odd encodings: all mean "unreadable"
        raise garbled(endpoint, "unreadable XML", text) from None
    if root.tag != "usersender":
        raise garbled(endpoint, f"unexpected root <{root.tag[:40]}>", text)
    return [_sender(el) for el in root if el.tag == "sender"]


def parse_send(
    endpoint: str, body: Body | None, recipients: Iterable[str] | None = None
) -> SendResult:
    """`Result: Success`, `Success`, `Result: <code>` or one `id:number` line per recipient.

    Strict on purpose: only the documented success (and the legacy bare
    `Success`) counts as one, whatever its case and spacing. `Result: -113` is
    the -113 error of `endpoint`; `Result:Failed`, `success=false` or an HTML
    page are garbled, that is unknown, never sent. With `recipients` (the
    numbers sent, in order) an id listing is checked number by number.
    """
    text = text_of(body)
    raise_for_code(endpoint, text)
    sent = tuple(str(n) for n in recipients) if recipients is not None else None
    if _SEND_OK.fullmatch(text):
        sent = sent or ()
        return SendResult(body=text, recipients=sent, confirmed=(True,) * len(sent))
    code = _RESULT_CODE.fullmatch(text)
    if code:
        raise ProviderError(endpoint, int(code[1]), body=text)
    lines = [_strip(line) for line in text.splitlines()]
    matches = [_ID_LINE.fullmatch(line) for line in lines if line]
    if not matches or not all(m and not _NOT_AN_ID.match(m[1]) for m in matches):
        raise garbled(endpoint, "not a send result", text)
    pairs = [(m[2], m[1]) for m in matches if m]
    if sent is None:
        sent = tuple(number for number, _ in pairs)
    confirmed = _confirm(sent, pairs)
    if confirmed is None:
        raise garbled(endpoint, "the answer lists numbers that were not sent", text)
    return SendResult(body=text, ids=dict(pairs), recipients=sent, confirmed=confirmed)


def _confirm(sent: tuple[str, ...], pairs: list[tuple[str, str]]) -> tuple[bool, ...] | None:
    """Which of `sent` the listed (number, id) pairs confirm, one id per occurrence.

    None when the listing names a number more often than it was sent: then the
    answer is not about this request and proves nothing.
    """
    listed = Counter(canonical_number(number) for number, _ in pairs)
    out = []
    for number in sent:
        key = canonical_number(number)
        out.append(listed[key] > 0)
        listed[key] -= 1
    if any(n > 0 for n in listed.values()):
        return None
    return tuple(out)


def canonical_number(number: str) -> str:
    """`9665XXXXXXXX` for the spellings a provider may echo (`+966`, `00966`, `05`, `5`)."""
    digits = number.strip().lstrip("+")
    if digits.startswith("00"):
        digits = digits[2:]
    if len(digits) == 10 and digits.startswith("05"):
        digits = "966" + digits[1:]
    elif len(digits) == 9 and digits.startswith("5"):
        digits = "966" + digits
    return digits


def _strip(text: str) -> str:
    while True:
        stripped = text.strip().strip(_INVISIBLE)
        if stripped == text:
            return text
        text = stripped


def _sender(el: ET.Element) -> SenderInfo:
    def get(tag: str) -> str:
        return (el.findtext(tag) or "").strip()

    return SenderInfo(
        id=get("id"),
        text=get("text"),
        status=get("status"),
        default=get("default").lower() in ("1", "true", "yes", "y"),
        date=get("date"),
        notes=get("notes"),
    )


def _json_field(text: str, name: str) -> object:
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data.get(name) if isinstance(data, dict) else None


def _json_code(text: str) -> int | None:
    """`{"code": 999, ...}` as the package README shows for chk_user."""
    value = _json_field(text, "code")
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,9}", value.strip(), re.ASCII):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**9:
        return value
    return None
