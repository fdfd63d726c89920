"""The provider's data: accounts, senders, balances, refused numbers, clock.

Only data and its bookkeeping live here, no answers: `rules.py` decides what
an endpoint says and `admin.py` changes the data on a test's behalf, so that
both read and write one model. Not locked; the `Sandbox` holds its lock
around every use.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

RIYADH = ZoneInfo("Asia/Riyadh")
ACCOUNT_STATUSES = ("active", "unactivated", "blocked")
SENDER_STATUSES = ("active", "pending", "inactive", "rejected")
REFUSAL_CODES = (-117, -122)
DEMO_USER, DEMO_SECRET = "demo", "demo-secret"
DEMO_CLIENT, DEMO_CLIENT_SECRET = "demo-client", "demo-client-secret"
DEMO_SENDERS = ("Dreams", "Alerts", "Promo")


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
        """Accepted on `day`: the count belongs to the day it was kept for."""
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
        """No allowlist means every address, as on a new provider account."""
        if not self.networks:
            return True
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.networks)


class Model:
    """Everything the provider remembers, and the sandbox clock it dates by."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self.reset(seed_demo=False)

    def reset(self, *, seed_demo: bool) -> None:
        """Back to empty, or to the demo account the README promises."""
        self.clock_offset = 0.0
        self.accounts: dict[str, Account] = {}
        self.refused: dict[str, int] = {}
        self.sender_seq = 0
        self.calls: Counter[str] = Counter()
        self.answers: defaultdict[str, Counter[str]] = defaultdict(Counter)
        if seed_demo:
            demo = Account(
                user=DEMO_USER,
                secret_key=DEMO_SECRET,
                balance=1_000_000,
                mobile="966500000000",
                email="demo@example.com",
                activation_code="000000",
            )
            self.accounts[DEMO_USER] = demo
            for name in DEMO_SENDERS:
                self.add_sender(demo, name, "active")

    # -- clock -------------------------------------------------------------

    def now(self) -> float:
        """Sandbox time: wall clock plus the admin's offset."""
        return self._clock() + self.clock_offset

    def today(self) -> date:
        """The provider's day (Riyadh), which daily limits count by."""
        return datetime.fromtimestamp(self.now(), RIYADH).date()

    # -- accounts and senders ------------------------------------------------

    def account(self, user: str) -> Account:
        """The account, or LookupError (which the admin API turns into 404)."""
        account = self.accounts.get(user)
        if account is None:
            raise LookupError(f"no account {user!r}")
        return account

    def add_sender(self, account: Account, text: str, status: str) -> Sender:
        """A new sender; ids rise across accounts, the first one is the default."""
        self.sender_seq += 1
        sender = Sender(
            self.sender_seq,
            text,
            status,
            created=self.today().isoformat(),
            default=not account.senders,
        )
        account.senders[text] = sender
        return sender

    def account_view(self, a: Account, day: date) -> dict[str, Any]:
        """An account as the admin API shows it, without its secrets."""
        return {
            "user": a.user,
            "status": a.status,
            "balance": a.balance,
            "allowed_ips": list(a.allowed_ips),
            "senders": {n: sender_view(s, day) for n, s in a.senders.items()},
        }


def sender_view(s: Sender, day: date) -> dict[str, Any]:
    """A sender as the admin API shows it."""
    return {
        "id": s.id,
        "sender": s.text,
        "status": s.status,
        "daily_limit": s.daily_limit,
        "today": s.today(day),
        "default": s.default,
        "date": s.created,
    }
