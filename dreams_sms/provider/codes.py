"""The provider's response codes, one table per endpoint.

The same number means different things on different endpoints (-113 is
"not enough balance" on sendsms but "sender text duplicated" on newsender),
so a code is only ever looked up together with the endpoint that returned it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What the worker should do about a code, independent of its number."""

    REQUEST = "request"  # our request was wrong; retrying will not help
    RETRYABLE = "retryable"  # the provider did not accept the call; try again later
    BALANCE = "balance"  # not enough balance: pause everything, keep the jobs
    SENDER_LIMIT = "sender_limit"  # the sender's daily limit is used up
    ACCOUNT = "account"  # credentials, activation, block or IP allowlist
    PER_NUMBER = "per_number"  # one recipient is bad; the rest of a batch is fine
    SENDER = "sender"  # the sender name cannot be used
    CONFLICT = "conflict"  # the thing exists already (user, mobile, sender)


@dataclass(frozen=True, slots=True)
class Code:
    code: int
    description: str
    kind: Kind


SUCCESS = 999

ENDPOINTS = (
    "Register",
    "activate",
    "chk_user",
    "chk_balance",
    "newsender",
    "senderstatus",
    "usersender",
    "sendsms",
    "sendsms_multi",
)

_MISSING = (-100, "Missing parameters", Kind.REQUEST)
_BAD_CREDENTIALS = (-110, "Wrong username or secret_key", Kind.ACCOUNT)

_SEND = (
    _MISSING,
    _BAD_CREDENTIALS,
    (-111, "Account not activated", Kind.ACCOUNT),
    (-112, "Blocked account", Kind.ACCOUNT),
    (-113, "Not enough balance", Kind.BALANCE),
    (-114, "Service not available", Kind.RETRYABLE),
    (-115, "Sender not available", Kind.SENDER),
    (-116, "Invalid sender name", Kind.SENDER),
    (-117, "Check your number. There is a problem", Kind.PER_NUMBER),
    (-118, "Unwanted error", Kind.RETRYABLE),
    (-119, "Later date time is not correct", Kind.REQUEST),
    (-122, "Number not allowed", Kind.PER_NUMBER),
    (-123, "Sender's name exceeds daily sending limit", Kind.SENDER_LIMIT),
    (-124, "IP not allowed", Kind.ACCOUNT),
)

_TABLE: dict[str, tuple[tuple[int, str, Kind], ...]] = {
    "Register": (
        (-100, "Missing parameters (username, password, mobile or email)", Kind.REQUEST),
        (-110, "Username already used", Kind.CONFLICT),
        (-111, "Mobile already used", Kind.CONFLICT),
        (-112, "Email already used", Kind.CONFLICT),
        (
            -120,
            "Username must start with a letter and contain only letters, numbers and underscores",
            Kind.REQUEST,
        ),
        (-121, "Password less than 6 characters", Kind.REQUEST),
    ),
    "activate": (
        _MISSING,
        _BAD_CREDENTIALS,
        (-111, "Wrong activation code", Kind.REQUEST),
    ),
    "chk_user": (
        _MISSING,
        (-110, "Account does not exist (wrong username or secret key)", Kind.ACCOUNT),
        (-111, "Account not activated", Kind.ACCOUNT),
        (-112, "Blocked account", Kind.ACCOUNT),
    ),
    "chk_balance": (_MISSING, _BAD_CREDENTIALS),
    "newsender": (
        _MISSING,
        _BAD_CREDENTIALS,
        (-113, "Sender text duplicated", Kind.CONFLICT),
        (-114, "Invalid sender text (wrong character or exceeds length)", Kind.REQUEST),
    ),
    "senderstatus": (
        _MISSING,
        _BAD_CREDENTIALS,
        (-116, "Sender text not found", Kind.SENDER),
        (-117, "Sender text inactive", Kind.SENDER),
        (-118, "Sender text rejected", Kind.SENDER),
    ),
    "usersender": (
        _MISSING,
        _BAD_CREDENTIALS,
        (-117, "No sender for this user", Kind.SENDER),
    ),
    "sendsms": _SEND,
    "sendsms_multi": _SEND,
}

CODES: dict[str, dict[int, Code]] = {
    endpoint: {c: Code(c, d, k) for c, d, k in rows} for endpoint, rows in _TABLE.items()
}


def lookup(endpoint: str, code: int) -> Code:
    """The meaning of `code` on `endpoint`; unknown codes are kept, never guessed."""
    known = CODES.get(endpoint, {}).get(code)
    if known is not None:
        return known
    return Code(code, f"Unknown code {code} from {endpoint}", Kind.REQUEST)
