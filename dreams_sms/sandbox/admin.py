"""The admin operations: what a test sets up and reads back.

Kept apart from `rules.py` so that the provider's own answers never depend
on a route only tests have. `Admin` is the `Sandbox`'s base class: each
operation takes the sandbox lock and works on the same `Model`, `Record`
and `TokenIssuer` as the endpoints. Input is checked here, raising
ValueError (HTTP 400) or LookupError (HTTP 404).
"""

from __future__ import annotations

import ipaddress
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from .faults import Faults
from .model import (
    ACCOUNT_STATUSES,
    DEMO_USER,
    REFUSAL_CODES,
    SENDER_STATUSES,
    Account,
    Model,
    sender_view,
)
from .oauth import TokenIssuer
from .record import Record, lookup_keys
from .rules import Rules

_UNSET: Any = object()


class Admin:
    """Set-up and inspection; the state it works on is made by `Sandbox`."""

    _lock: threading.RLock
    _model: Model
    _rules: Rules
    _issuer: TokenIssuer
    _record: Record
    _faults: Faults

    # -- reading -------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        with self._lock:
            model = self._model
            day = model.today()
            return {
                "accounts": {u: model.account_view(a, day) for u, a in model.accounts.items()},
                "oauth_clients": self._issuer.clients(),
                "faults": self._faults.to_dict(),
                "clock_offset_s": model.clock_offset,
                "today": day.isoformat(),
                "token_ttl": self._issuer.ttl,
                "success_body": self._rules.success_body,
                "refused": dict(model.refused),
                "counters": self._counters(),
            }

    def account(self, user: str) -> dict[str, Any]:
        """Everything about one account, secrets included (sandbox only)."""
        with self._lock:
            account = self._model.account(user)
            view = self._model.account_view(account, self._model.today())
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

    def lookup(self, sender: str, since: float, items: Sequence[Mapping[str, str]]) -> list[int]:
        """For each {to, text}: how many records with this sender, number and
        text were accepted at or after `since` (epoch seconds, sandbox clock)."""
        since = _finite(since)
        keys = lookup_keys(sender, items)
        with self._lock:
            return self._record.lookup(keys, since)

    # -- setting up ------------------------------------------------------------

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
            account = self._model.accounts.get(user)
            if account is None:
                account = Account(user=user, secret_key=secret_key or secrets.token_hex(16))
                self._model.accounts[user] = account
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
            self._model.account(str(user))
            self._issuer.add_client(str(client_id), str(client_secret), str(user))
            return {"client_id": str(client_id), "user": str(user)}

    def set_balance(self, value: float, user: str = DEMO_USER) -> float:
        with self._lock:
            account = self._model.account(user)
            account.balance = _amount(value)
            return account.balance

    def add_balance(self, value: float, user: str = DEMO_USER) -> float:
        with self._lock:
            account = self._model.account(user)
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
            account = self._model.account(user)
            item = account.senders.get(sender) or self._model.add_sender(account, sender, "active")
            if status is not None:
                item.status = status
            if daily_limit is not _UNSET:
                item.daily_limit = daily_limit
            return sender_view(item, self._model.today())

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
                self._model.refused.clear()
            self._model.refused.update(parsed)
            return dict(self._model.refused)

    def set_clock(self, offset_s: float) -> float:
        with self._lock:
            self._model.clock_offset = _finite(offset_s)
            return self._model.clock_offset

    def set_token_ttl(self, seconds: int) -> int:
        with self._lock:
            self._issuer.ttl = positive_int(seconds, "seconds")
            return self._issuer.ttl

    def _counters(self) -> dict[str, Any]:
        return {
            "calls": dict(self._model.calls),
            "answers": {e: dict(c) for e, c in self._model.answers.items()},
            "accepted_by_sender": self._record.accepted_by_sender(),
        }


# -- input checks --------------------------------------------------------------


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


def positive_int(value: Any, name: str) -> int:
    """A count of seconds from JSON or the command line: 0 or less is refused."""
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


def as_faults(value: Faults | Mapping[str, Any] | None) -> Faults:
    """A private copy of the fault settings, so the caller's object is not shared."""
    if value is None:
        return Faults()
    if isinstance(value, Faults):
        return Faults(**value.to_dict())
    return Faults().updated(value)
