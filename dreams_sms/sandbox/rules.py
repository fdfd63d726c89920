"""What each endpoint answers, as the provider reference describes it.

One `Rules` reads and changes the `Model`; it knows nothing of HTTP or
faults (the `Sandbox` applies those around it) and takes no lock (the
`Sandbox` holds one around every call). Every endpoint but Register starts
with the same credential check, `_sign_in`, so that -100 and -110 mean one
thing everywhere.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from .model import RIYADH, Account, Model
from .oauth import TokenIssuer
from .record import Record
from .reference import segments

SUCCESS = "999"
SUCCESS_BODIES = ("result", "success", "sms_id")
OPTION_PARAMS = (
    "is_calander",
    "calander_date",
    "calander_time",
    "reminder",
    "reminder_text",
    "location_url",
)

_NUMBER = re.compile(r"9665[0-9]{8}")
_SENDER_TEXT = re.compile(r"[A-Za-z0-9 .&-]{1,11}")
_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}(:[0-9]{2})?")
_XML_STATUS = {
    "active": "Active",
    "pending": "UnActive",
    "inactive": "UnActive",
    "rejected": "Rejected",
}

Handler = Callable[[Mapping[str, str], str | None, str, bool], str]


class _Refused(Exception):
    """An answer code that ends a call early (raised by the shared checks)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class Rules:
    """The endpoints: parameters in, the provider's answer body out."""

    def __init__(self, model: Model, issuer: TokenIssuer, record: Record, success_body: str):
        """`success_body`: one of SUCCESS_BODIES, checked by the caller."""
        self.model = model
        self.issuer = issuer
        self.record = record
        self.success_body = success_body
        self._handlers: dict[str, Handler] = {
            "Register": self._register,
            "activate": self._activate,
            "chk_user": self._chk_user,
            "chk_balance": self._chk_balance,
            "newsender": self._newsender,
            "senderstatus": self._senderstatus,
            "usersender": self._usersender,
            "sendsms": self._sendsms,
            "sendsms_multi": self._sendsms_multi,
        }

    def answer(
        self, name: str, p: Mapping[str, str], bearer: str | None, ip: str, partial: bool = False
    ) -> str:
        """The body for one call to the canonical endpoint `name`. `partial`:
        accept a send but leave its last message out of the answer."""
        try:
            return self._handlers[name](p, bearer, ip, partial)
        except _Refused as refused:
            return refused.code

    # -- the shared check ------------------------------------------------------

    def _sign_in(self, p: Mapping[str, str], bearer: str | None, *required: str) -> Account:
        """The caller's account. -100 when a `required` parameter or the
        credentials are missing, -110 when they match no account."""
        if not all(_param(p, name) for name in required) or not _has_credentials(p, bearer):
            raise _Refused("-100")
        account = self.authenticate(p, bearer)
        if account is None:
            raise _Refused("-110")
        return account

    def authenticate(self, p: Mapping[str, str], bearer: str | None) -> Account | None:
        """The account behind a bearer token (which wins) or user + secret_key."""
        if bearer is not None:
            user = self.issuer.user_of(bearer)
            return None if user is None else self.model.accounts.get(user)
        account = self.model.accounts.get(_param(p, "user"))
        key = _param(p, "secret_key").encode()
        if account is None or not hmac.compare_digest(key, account.secret_key.encode()):
            return None
        return account

    # -- account endpoints -------------------------------------------------------

    def _register(self, p: Mapping[str, str], _bearer: str | None, _ip: str, _: bool) -> str:
        user, password = _param(p, "user"), p.get("password", "")
        mobile, email = "".join(_param(p, "mobile").split()), _param(p, "email")
        if not (user and password and mobile and email):
            return "-100"
        if not _USERNAME.fullmatch(user):
            return "-120"
        if len(password) < 6:
            return "-121"
        accounts = self.model.accounts.values()
        if any(a.user.lower() == user.lower() for a in accounts):
            return "-110"
        if any(a.mobile == mobile for a in accounts):
            return "-111"
        if any(a.email.lower() == email.lower() for a in accounts):
            return "-112"
        self.model.accounts[user] = Account(
            user=user,
            secret_key=secrets.token_hex(16),
            status="unactivated",
            mobile=mobile,
            email=email,
            activation_code=f"{secrets.randbelow(1_000_000):06d}",
        )
        return SUCCESS

    def _activate(self, p: Mapping[str, str], bearer: str | None, _ip: str, _: bool) -> str:
        account = self._sign_in(p, bearer, "code")
        if not hmac.compare_digest(_param(p, "code").encode(), account.activation_code.encode()):
            return "-111"
        if account.status == "unactivated":
            account.status = "active"
        return SUCCESS

    def _chk_user(self, p: Mapping[str, str], bearer: str | None, _ip: str, _: bool) -> str:
        account = self._sign_in(p, bearer)
        return {"unactivated": "-111", "blocked": "-112"}.get(account.status, SUCCESS)

    def _chk_balance(self, p: Mapping[str, str], bearer: str | None, _ip: str, _: bool) -> str:
        return _number(self._sign_in(p, bearer).balance)

    # -- sender endpoints --------------------------------------------------------

    def _newsender(self, p: Mapping[str, str], bearer: str | None, _ip: str, _: bool) -> str:
        account = self._sign_in(p, bearer, "sendertext")
        text = _param(p, "sendertext")
        if not _SENDER_TEXT.fullmatch(text):
            return "-114"
        if text in account.senders:
            return "-113"
        self.model.add_sender(account, text, "pending")
        return SUCCESS

    def _senderstatus(self, p: Mapping[str, str], bearer: str | None, _ip: str, _: bool) -> str:
        account = self._sign_in(p, bearer, "sendertext")
        sender = account.senders.get(_param(p, "sendertext"))
        if sender is None:
            return "-116"
        return {"active": SUCCESS, "rejected": "-118"}.get(sender.status, "-117")

    def _usersender(self, p: Mapping[str, str], bearer: str | None, _ip: str, _: bool) -> str:
        account = self._sign_in(p, bearer)
        if not account.senders:
            return "-117"
        rows = "".join(
            f"<sender><id>{s.id}</id><text>{escape(s.text)}</text>"
            f"<status>{_XML_STATUS[s.status]}</status>"
            f"<default>{'true' if s.default else 'false'}</default>"
            f"<date>{s.created}</date><notes></notes></sender>"
            for s in account.senders.values()
        )
        return f"<usersender>{rows}</usersender>"

    # -- sending -----------------------------------------------------------------

    def _sendsms(self, p: Mapping[str, str], bearer: str | None, ip: str, partial: bool) -> str:
        to, message = p.get("to", ""), p.get("message", "")
        pieces = ["".join(n.split()) for n in to.split(",")]
        if not to.strip() or not message.strip() or not all(pieces):
            return "-100"
        return self._send(p, bearer, ip, [(n, message) for n in pieces], partial)

    def _sendsms_multi(
        self, p: Mapping[str, str], bearer: str | None, ip: str, partial: bool
    ) -> str:
        items = parse_multi(p.get("to", ""))
        if items is None:
            return "-100"
        return self._send(p, bearer, ip, items, partial)

    def _send(
        self,
        p: Mapping[str, str],
        bearer: str | None,
        ip: str,
        items: list[tuple[str, str]],
        partial: bool,
    ) -> str:
        """The atomic send: every check passes for every item, or nothing happens."""
        account = self._sign_in(p, bearer, "sender")
        name = _param(p, "sender")
        if account.status != "active":
            return "-111" if account.status == "unactivated" else "-112"
        if not account.ip_allowed(ip):
            return "-124"
        sender = account.senders.get(name)
        if sender is None or sender.status == "rejected":
            return "-116"
        if sender.status != "active":
            return "-115"
        for number, _ in items:
            if not _NUMBER.fullmatch(number):
                return "-117"
            refused = self.model.refused.get(number)
            if refused is not None:
                return str(refused)
        if not self._calendar_ok(p):
            return "-119"
        day, n = self.model.today(), len(items)
        if sender.daily_limit is not None and sender.today(day) + n > sender.daily_limit:
            return "-123"
        memo: dict[str, int] = {}  # sendsms repeats one text for every number
        costs = [memo[t] if t in memo else memo.setdefault(t, segments(t)) for _, t in items]
        total = sum(costs)
        if account.balance < total:
            return "-113"
        account.balance -= total
        if sender.day != day:
            sender.day, sender.count = day, 0
        sender.count += n
        options = {k: p[k] for k in OPTION_PARAMS if p.get(k)}
        ids = self.record.accept(account.user, name, items, costs, options, self.model.now())
        if partial:  # accepted them all, but the answer forgets the last one
            pairs = list(zip(ids, items, strict=True))[:-1]
            return "\n".join(f"{sms_id}:{num}" for sms_id, (num, _) in pairs)
        if self.success_body == "success":
            return "Success"
        if self.success_body == "sms_id":
            return "\n".join(f"{sms_id}:{num}" for sms_id, (num, _) in zip(ids, items, strict=True))
        return "Result:Success"

    def _calendar_ok(self, p: Mapping[str, str]) -> bool:
        """-119 unless a calendar entry names a valid time still to come."""
        reminder = _param(p, "reminder")
        if reminder and not (reminder.isascii() and reminder.isdigit()):
            return False
        if _param(p, "is_calander").lower() not in ("1", "true"):
            return True
        day, hour = _param(p, "calander_date"), _param(p, "calander_time")
        if not (_DATE.fullmatch(day) and _TIME.fullmatch(hour)):
            return False
        fmt = "%Y-%m-%d %H:%M:%S" if hour.count(":") == 2 else "%Y-%m-%d %H:%M"
        try:
            when = datetime.strptime(f"{day} {hour}", fmt).replace(tzinfo=RIYADH)
        except ValueError:
            return False
        return when.timestamp() > self.model.now()


def parse_multi(raw: str) -> list[tuple[str, str]] | None:
    """sendsms_multi's `to`: the reference's list of lists of {to, message},
    a flat list of them, or {number: message}. None when it is none of these."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if isinstance(data, dict):
        pairs = list(data.items())
    elif isinstance(data, list):
        flat: list[Any] = []
        for element in data:
            if isinstance(element, dict):
                flat.append(element)
            elif isinstance(element, list) and element:
                flat.extend(element)
            else:
                return None
        if not all(isinstance(d, dict) and "to" in d and "message" in d for d in flat):
            return None
        pairs = [(d["to"], d["message"]) for d in flat]
    else:
        return None
    items = []
    for to, message in pairs:
        if type(to) is str and to.isdigit():
            number = to  # the usual case, no clean-up needed
        elif isinstance(to, str) or (isinstance(to, int) and not isinstance(to, bool)):
            number = "".join(str(to).split())
        else:
            return None
        if not number or not isinstance(message, str) or not message.strip():
            return None
        items.append((number, message))
    return items or None


def is_code(body: str) -> bool:
    """A negative answer code, as opposed to a result body."""
    return body.startswith("-") and body[1:].isdigit()


def _param(p: Mapping[str, str], name: str) -> str:
    return p.get(name, "").strip()


def _has_credentials(p: Mapping[str, str], bearer: str | None) -> bool:
    return bearer is not None or bool(_param(p, "user") and _param(p, "secret_key"))


def _number(value: float) -> str:
    """A balance as the provider prints it: `1000`, or `12.5` when not whole."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
