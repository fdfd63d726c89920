"""The provider, modelled: accounts, senders, balance and the send rules.

Pure Python, no HTTP: `Sandbox.api` takes an endpoint and its parameters and
returns an `Outcome` that the server merely writes (or, for a fault, does not
write). Every public method takes one lock, so the model is consistent under
a threaded server. The Sandbox owns, under that same lock, a `TokenIssuer`
(OAuth, in `oauth.py`) and the `Record` of accepted messages (`record.py`),
which is what tests and the worker's reconciliation compare against.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import random
import re
import secrets
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from .faults import Fault, FaultKind, Faults, canonical_endpoint, decide, error_page
from .oauth import TokenIssuer
from .record import Record, lookup_keys
from .reference import segments

RIYADH = ZoneInfo("Asia/Riyadh")
SUCCESS = "999"
SUCCESS_BODIES = ("result", "success", "sms_id")
ACCOUNT_STATUSES = ("active", "unactivated", "blocked")
SENDER_STATUSES = ("active", "pending", "inactive", "rejected")
REFUSAL_CODES = (-117, -122)
DEMO_USER, DEMO_SECRET = "demo", "demo-secret"
DEMO_CLIENT, DEMO_CLIENT_SECRET = "demo-client", "demo-client-secret"
DEMO_SENDERS = ("Dreams", "Alerts", "Promo")
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


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the server does with one call. `close`: hang up without answering
    (after `delay_s`), which is how hang and drop faults look on the wire."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    delay_s: float = 0.0
    close: bool = False
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Sender:
    id: int
    text: str
    status: str = "active"
    daily_limit: int | None = None
    created: str = ""
    default: bool = False
    day: date | None = None
    count: int = 0  # accepted on `day`

    def today(self, day: date) -> int:
        return self.count if self.day == day else 0


@dataclass(slots=True)
class Account:
    user: str
    secret_key: str
    status: str = "active"
    balance: float = 0
    allowed_ips: list[str] = field(default_factory=list)
    networks: list[Any] = field(default_factory=list)
    senders: dict[str, Sender] = field(default_factory=dict)
    mobile: str = ""
    email: str = ""
    activation_code: str = ""

    def ip_allowed(self, ip: str) -> bool:
        if not self.networks:
            return True
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.networks)


_UNSET: Any = object()


class Sandbox:
    """A stateful Dreams provider. Thread-safe; knows nothing about HTTP."""

    def __init__(
        self,
        *,
        faults: Faults | Mapping[str, Any] | None = None,
        success_body: str = "result",
        token_ttl: int = 3600,
        seed_demo: bool = True,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        journal: str | Path | None = None,
    ):
        if success_body not in SUCCESS_BODIES:
            raise ValueError(f"success_body must be one of {', '.join(SUCCESS_BODIES)}")
        self.success_body = success_body
        self.seed_demo = seed_demo
        self._initial_ttl = _positive_int(token_ttl, "token_ttl")
        self._clock = clock
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._partial = False
        self._faults = _faults(faults)
        self._issuer = TokenIssuer(self.now, self._initial_ttl)
        self._reset_state()
        self._record = Record(journal)

    # -- clock -------------------------------------------------------------

    def now(self) -> float:
        """Sandbox time: wall clock plus the admin's offset."""
        return self._clock() + self.clock_offset

    def today(self) -> date:
        return datetime.fromtimestamp(self.now(), RIYADH).date()

    @property
    def faults(self) -> Faults:
        return self._faults

    @property
    def token_ttl(self) -> int:
        """Lifetime in seconds of the access tokens issued from now on."""
        return self._issuer.ttl

    @token_ttl.setter
    def token_ttl(self, seconds: int) -> None:
        self._issuer.ttl = seconds

    # -- the wire ------------------------------------------------------------

    def api(
        self,
        endpoint: str,
        params: Mapping[str, str],
        *,
        bearer: str | None = None,
        ip: str = "127.0.0.1",
    ) -> Outcome:
        """One API call. Raises KeyError for an endpoint the provider lacks."""
        name = canonical_endpoint(endpoint)
        if name is None:
            raise KeyError(endpoint)
        with self._lock:
            self._calls[name] += 1
            fault = decide(self._faults, self._rng, name)
            delay = self._faults.latency_ms / 1000.0
            if fault is not None and fault.kind not in (FaultKind.DROP, FaultKind.PARTIAL):
                return self._faulted(name, fault, delay)
            self._partial = fault is not None and fault.kind is FaultKind.PARTIAL
            try:
                body = self._handlers[name](params, bearer, ip)
            finally:
                self._partial = False
            if fault is not None and fault.kind is FaultKind.DROP:
                # drop after accept: the work is done, the answer lost
                self._answers[name][fault.kind.value] += 1
                return Outcome(close=True, delay_s=delay)
            if fault is not None and not _is_code(body):  # PARTIAL, and it was accepted
                self._answers[name][fault.kind.value] += 1
            else:
                self._answers[name][body if _is_code(body) else SUCCESS] += 1
            return Outcome(body=body.encode(), delay_s=delay)

    def _faulted(self, name: str, fault: Fault, delay: float) -> Outcome:
        if fault.kind is FaultKind.ERROR:
            self._answers[name][str(fault.code)] += 1
            return Outcome(body=str(fault.code).encode(), delay_s=delay)
        if fault.kind is FaultKind.HTTP5XX:
            self._answers[name][f"http_{fault.status}"] += 1
            return Outcome(fault.status, error_page(fault.status), "text/html", delay)
        if fault.kind is FaultKind.REFUSE:
            self._answers[name][f"http_{fault.status}"] += 1
            wait = f"{self._faults.refuse_retry_after:g}"
            return Outcome(fault.status, error_page(fault.status), "text/html", delay,
                           headers=(("Retry-After", wait),))
        self._answers[name][fault.kind.value] += 1
        if fault.kind is FaultKind.GARBLED:
            return Outcome(body=fault.body, content_type="text/html", delay_s=delay)
        return Outcome(close=True, delay_s=delay + self._faults.hang_s)  # HANG

    # -- endpoints -------------------------------------------------------------

    def _register(self, p: Mapping[str, str], _bearer: str | None, _ip: str) -> str:
        user, password = _param(p, "user"), p.get("password", "")
        mobile, email = "".join(_param(p, "mobile").split()), _param(p, "email")
        if not (user and password and mobile and email):
            return "-100"
        if not _USERNAME.fullmatch(user):
            return "-120"
        if len(password) < 6:
            return "-121"
        if any(a.user.lower() == user.lower() for a in self._accounts.values()):
            return "-110"
        if any(a.mobile == mobile for a in self._accounts.values()):
            return "-111"
        if any(a.email.lower() == email.lower() for a in self._accounts.values()):
            return "-112"
        self._accounts[user] = Account(
            user=user,
            secret_key=secrets.token_hex(16),
            status="unactivated",
            mobile=mobile,
            email=email,
            activation_code=f"{secrets.randbelow(1_000_000):06d}",
        )
        return SUCCESS

    def _activate(self, p: Mapping[str, str], bearer: str | None, _ip: str) -> str:
        code = _param(p, "code")
        if not code or not _has_credentials(p, bearer):
            return "-100"
        account = self._authenticate(p, bearer)
        if account is None:
            return "-110"
        if not hmac.compare_digest(code.encode(), account.activation_code.encode()):
            return "-111"
        if account.status == "unactivated":
            account.status = "active"
        return SUCCESS

    def _chk_user(self, p: Mapping[str, str], bearer: str | None, _ip: str) -> str:
        if not _has_credentials(p, bearer):
            return "-100"
        account = self._authenticate(p, bearer)
        if account is None:
            return "-110"
        return {"unactivated": "-111", "blocked": "-112"}.get(account.status, SUCCESS)

    def _chk_balance(self, p: Mapping[str, str], bearer: str | None, _ip: str) -> str:
        if not _has_credentials(p, bearer):
            return "-100"
        account = self._authenticate(p, bearer)
        return "-110" if account is None else _number(account.balance)

    def _newsender(self, p: Mapping[str, str], bearer: str | None, _ip: str) -> str:
        text = _param(p, "sendertext")
        if not text or not _has_credentials(p, bearer):
            return "-100"
        account = self._authenticate(p, bearer)
        if account is None:
            return "-110"
        if not _SENDER_TEXT.fullmatch(text):
            return "-114"
        if text in account.senders:
            return "-113"
        self._add_sender(account, text, "pending")
        return SUCCESS

    def _senderstatus(self, p: Mapping[str, str], bearer: str | None, _ip: str) -> str:
        text = _param(p, "sendertext")
        if not text or not _has_credentials(p, bearer):
            return "-100"
        account = self._authenticate(p, bearer)
        if account is None:
            return "-110"
        sender = account.senders.get(text)
        if sender is None:
            return "-116"
        return {"active": SUCCESS, "rejected": "-118"}.get(sender.status, "-117")

    def _usersender(self, p: Mapping[str, str], bearer: str | None, _ip: str) -> str:
        if not _has_credentials(p, bearer):
            return "-100"
        account = self._authenticate(p, bearer)
        if account is None:
            return "-110"
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

    def _sendsms(self, p: Mapping[str, str], bearer: str | None, ip: str) -> str:
        to, message = p.get("to", ""), p.get("message", "")
        pieces = ["".join(n.split()) for n in to.split(",")]
        if not to.strip() or not message.strip() or not all(pieces):
            return "-100"
        return self._send(p, bearer, ip, [(n, message) for n in pieces])

    def _sendsms_multi(self, p: Mapping[str, str], bearer: str | None, ip: str) -> str:
        items = parse_multi(p.get("to", ""))
        if items is None:
            return "-100"
        return self._send(p, bearer, ip, items)

    def _send(
        self, p: Mapping[str, str], bearer: str | None, ip: str, items: list[tuple[str, str]]
    ) -> str:
        """The atomic send: every check passes for every item, or nothing happens."""
        name = _param(p, "sender")
        if not name or not _has_credentials(p, bearer):
            return "-100"
        account = self._authenticate(p, bearer)
        if account is None:
            return "-110"
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
            refused = self._refused.get(number)
            if refused is not None:
                return str(refused)
        if not self._calendar_ok(p):
            return "-119"
        day, n = self.today(), len(items)
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
        ids = self._record.accept(account.user, name, items, costs, options, self.now())
        if self._partial:  # accepted them all, but the answer forgets the last one
            pairs = list(zip(ids, items, strict=True))[:-1]
            return "\n".join(f"{sms_id}:{num}" for sms_id, (num, _) in pairs)
        if self.success_body == "success":
            return "Success"
        if self.success_body == "sms_id":
            return "\n".join(f"{sms_id}:{num}" for sms_id, (num, _) in zip(ids, items, strict=True))
        return "Result:Success"

    def _calendar_ok(self, p: Mapping[str, str]) -> bool:
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
        return when.timestamp() > self.now()

    def _authenticate(self, p: Mapping[str, str], bearer: str | None) -> Account | None:
        """The account behind a bearer token (which wins) or user + secret_key."""
        if bearer is not None:
            user = self._issuer.user_of(bearer)
            return None if user is None else self._accounts.get(user)
        account = self._accounts.get(_param(p, "user"))
        key = _param(p, "secret_key").encode()
        if account is None or not hmac.compare_digest(key, account.secret_key.encode()):
            return None
        return account

    # -- OAuth -------------------------------------------------------------

    def oauth(self, action: str, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """`generate`, `refresh` or `revoke`: (HTTP status, JSON body).
        Raises KeyError for another action."""
        with self._lock:
            status, body = self._issuer.handle(action, params)
            name = f"token/{action}"
            self._calls[name] += 1
            self._answers[name][str(body.get("error", status))] += 1
            return status, body

    # -- admin -------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        with self._lock:
            day = self.today()
            return {
                "accounts": {u: self._account_view(a, day) for u, a in self._accounts.items()},
                "oauth_clients": self._issuer.clients(),
                "faults": self._faults.to_dict(),
                "clock_offset_s": self.clock_offset,
                "today": day.isoformat(),
                "token_ttl": self.token_ttl,
                "success_body": self.success_body,
                "refused": dict(self._refused),
                "counters": self._counters(),
            }

    def account(self, user: str) -> dict[str, Any]:
        """Everything about one account, secrets included (sandbox only)."""
        with self._lock:
            account = self._account(user)
            view = self._account_view(account, self.today())
            view.update(
                secret_key=account.secret_key,
                activation_code=account.activation_code,
                mobile=account.mobile,
                email=account.email,
            )
            return view

    def messages(
        self, offset: int = 0, limit: int = 1000, sender: str | None = None
    ) -> dict[str, Any]:
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        with self._lock:
            return self._record.page(offset, limit, sender)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counters = self._counters()
            return {
                "accepted": self._record.total,
                "by_sender": counters["accepted_by_sender"],
                "calls": counters["calls"],
                "answers": counters["answers"],
                "duplicates": self._record.duplicates,
            }

    def set_faults(
        self, changes: Mapping[str, Any] | None = None, *, reset: bool = False
    ) -> dict[str, Any]:
        """Partial update; `reset` first returns to a well-behaved provider."""
        with self._lock:
            base = Faults() if reset else self._faults
            self._faults = base.updated(dict(changes or {}))
            return self._faults.to_dict()

    def upsert_account(
        self,
        user: str,
        *,
        secret_key: str | None = None,
        balance: float | None = None,
        status: str | None = None,
        allowed_ips: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        if not isinstance(user, str) or not user:
            raise ValueError("user must be a non-empty string")
        if status is not None and status not in ACCOUNT_STATUSES:
            raise ValueError(f"status must be one of {', '.join(ACCOUNT_STATUSES)}")
        networks = None if allowed_ips is None else _networks(allowed_ips)
        with self._lock:
            account = self._accounts.get(user)
            if account is None:
                account = Account(user=user, secret_key=secret_key or secrets.token_hex(16))
                self._accounts[user] = account
            if secret_key is not None:
                account.secret_key = str(secret_key)
            if balance is not None:
                account.balance = _amount(balance)
            if status is not None:
                account.status = status
            if allowed_ips is not None and networks is not None:
                account.allowed_ips, account.networks = list(allowed_ips), networks
            return self.account(user)

    def add_oauth_client(
        self, client_id: object, client_secret: object, *, user: object = DEMO_USER
    ) -> dict[str, str]:
        """Register (or re-key) an OAuth client for `user`; the answer never shows the secret."""
        for name, value in (("client_id", client_id), ("client_secret", client_secret),
                            ("user", user)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
        with self._lock:
            self._account(str(user))
            self._issuer.add_client(str(client_id), str(client_secret), str(user))
            return {"client_id": str(client_id), "user": str(user)}

    def set_balance(self, value: float, user: str = DEMO_USER) -> float:
        with self._lock:
            account = self._account(user)
            account.balance = _amount(value)
            return account.balance

    def add_balance(self, value: float, user: str = DEMO_USER) -> float:
        with self._lock:
            account = self._account(user)
            account.balance = _amount(account.balance + _finite(value))
            return account.balance

    def set_sender(
        self,
        sender: str,
        *,
        user: str = DEMO_USER,
        status: str | None = None,
        daily_limit: int | None = _UNSET,
    ) -> dict[str, Any]:
        """Create or change a sender; `daily_limit=None` removes the limit."""
        if not isinstance(sender, str) or not sender:
            raise ValueError("sender must be a non-empty string")
        if status is not None and status not in SENDER_STATUSES:
            raise ValueError(f"status must be one of {', '.join(SENDER_STATUSES)}")
        if daily_limit not in (_UNSET, None) and not _count(daily_limit):
            raise ValueError("daily_limit must be a non-negative integer or null")
        with self._lock:
            account = self._account(user)
            item = account.senders.get(sender) or self._add_sender(account, sender, "active")
            if status is not None:
                item.status = status
            if daily_limit is not _UNSET:
                item.daily_limit = daily_limit
            return self._sender_view(item, self.today())

    def refuse(
        self, numbers: Mapping[str, int] | None = None, *, clear: bool = False
    ) -> dict[str, int]:
        """Numbers the provider refuses (-122) or calls invalid (-117)."""
        parsed: dict[str, int] = {}
        for number, code in dict(numbers or {}).items():
            if isinstance(code, bool) or code not in REFUSAL_CODES:
                raise ValueError(f"refusal code must be one of {REFUSAL_CODES}")
            parsed["".join(str(number).split())] = int(code)
        with self._lock:
            if clear:
                self._refused.clear()
            self._refused.update(parsed)
            return dict(self._refused)

    def set_clock(self, offset_s: float) -> float:
        with self._lock:
            self.clock_offset = _finite(offset_s)
            return self.clock_offset

    def set_token_ttl(self, seconds: int) -> int:
        with self._lock:
            self.token_ttl = _positive_int(seconds, "seconds")
            return self.token_ttl

    def lookup(self, sender: str, since: float, items: Sequence[Mapping[str, str]]) -> list[int]:
        """For each {to, text}: how many records with this sender, number and
        text were accepted at or after `since` (epoch seconds, sandbox clock)."""
        since = _finite(since)
        keys = lookup_keys(sender, items)
        with self._lock:
            return self._record.lookup(keys, since)

    def reset(self) -> None:
        """Back to the seed: accounts, record, counters, faults, clock.
        Issued OAuth tokens survive so a client's cached token keeps working."""
        with self._lock:
            self._faults = Faults()
            self._reset_state()
            self._record.reset()

    # -- internals ---------------------------------------------------------

    def _reset_state(self) -> None:
        """Accounts, clients, TTL, clock and counters back to the seed (the
        record has its own `reset`; issued tokens survive)."""
        self.clock_offset = 0.0
        self._issuer.reset()
        self._accounts: dict[str, Account] = {}
        self._refused: dict[str, int] = {}
        self._sender_seq = 0
        self._calls: Counter[str] = Counter()
        self._answers: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._handlers: dict[str, Callable[[Mapping[str, str], str | None, str], str]] = {
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
        if self.seed_demo:
            demo = Account(
                user=DEMO_USER,
                secret_key=DEMO_SECRET,
                balance=1_000_000,
                mobile="966500000000",
                email="demo@example.com",
                activation_code="000000",
            )
            self._accounts[DEMO_USER] = demo
            for name in DEMO_SENDERS:
                self._add_sender(demo, name, "active")
            self._issuer.add_client(DEMO_CLIENT, DEMO_CLIENT_SECRET, DEMO_USER)

    def _add_sender(self, account: Account, text: str, status: str) -> Sender:
        self._sender_seq += 1
        sender = Sender(
            self._sender_seq,
            text,
            status,
            created=self.today().isoformat(),
            default=not account.senders,
        )
        account.senders[text] = sender
        return sender

    def _account(self, user: str) -> Account:
        account = self._accounts.get(user)
        if account is None:
            raise LookupError(f"no account {user!r}")
        return account

    def _account_view(self, a: Account, day: date) -> dict[str, Any]:
        return {
            "user": a.user,
            "status": a.status,
            "balance": a.balance,
            "allowed_ips": list(a.allowed_ips),
            "senders": {n: self._sender_view(s, day) for n, s in a.senders.items()},
        }

    @staticmethod
    def _sender_view(s: Sender, day: date) -> dict[str, Any]:
        return {
            "id": s.id,
            "sender": s.text,
            "status": s.status,
            "daily_limit": s.daily_limit,
            "today": s.today(day),
            "default": s.default,
            "date": s.created,
        }

    def _counters(self) -> dict[str, Any]:
        return {
            "calls": dict(self._calls),
            "answers": {e: dict(c) for e, c in self._answers.items()},
            "accepted_by_sender": self._record.accepted_by_sender(),
        }


# -- helpers ---------------------------------------------------------------


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


def _param(p: Mapping[str, str], name: str) -> str:
    return p.get(name, "").strip()


def _has_credentials(p: Mapping[str, str], bearer: str | None) -> bool:
    return bearer is not None or bool(_param(p, "user") and _param(p, "secret_key"))


def _is_code(body: str) -> bool:
    return body.startswith("-") and body[1:].isdigit()


def _number(value: float) -> str:
    """A balance as the provider prints it: `1000`, or `12.5` when not whole."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a number")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _amount(value: Any) -> float:
    """A balance: never negative (a negative balance would read as an error code)."""
    number = _finite(value)
    if number < 0:
        raise ValueError("balance must not be negative")
    return int(number) if number.is_integer() else number


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} must be a positive integer")
    number = int(value)
    if number <= 0:
        raise ValueError(f"{name} must be a positive integer")
    return number


def _networks(values: Sequence[str]) -> list[Any]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValueError("allowed_ips must be a list of addresses or networks")
    try:
        return [ipaddress.ip_network(str(v).strip(), strict=False) for v in values]
    except ValueError as exc:
        raise ValueError(f"allowed_ips: {exc}") from None


def _faults(value: Faults | Mapping[str, Any] | None) -> Faults:
    if value is None:
        return Faults()
    if isinstance(value, Faults):
        return Faults(**value.to_dict())
    return Faults().updated(value)
