"""The provider, assembled: one lock around its model, rules and admin.

Pure Python, no HTTP: `Sandbox.api` takes an endpoint and its parameters and
returns an `Outcome` that the server merely writes (or, for a fault, does not
write). The parts live apart so that each can be read alone: the data in
`model.py`, what each endpoint answers in `rules.py`, the test-only set-up in
`admin.py`, OAuth in `oauth.py`, the record of accepted messages (what tests
and the worker's reconciliation compare against) in `record.py`. Every
public method takes the one lock, so the whole is consistent under a
threaded server.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from .admin import Admin, as_faults, positive_int
from .faults import Fault, FaultKind, Faults, canonical_endpoint, decide, error_page
from .model import (
    ACCOUNT_STATUSES,
    DEMO_CLIENT,
    DEMO_CLIENT_SECRET,
    DEMO_SECRET,
    DEMO_SENDERS,
    DEMO_USER,
    REFUSAL_CODES,
    RIYADH,
    SENDER_STATUSES,
    Account,
    Model,
    Sender,
)
from .oauth import TokenIssuer
from .record import Record
from .rules import OPTION_PARAMS, SUCCESS, SUCCESS_BODIES, Rules, is_code, parse_multi

__all__ = [
    "ACCOUNT_STATUSES",
    "DEMO_CLIENT",
    "DEMO_CLIENT_SECRET",
    "DEMO_SECRET",
    "DEMO_SENDERS",
    "DEMO_USER",
    "OPTION_PARAMS",
    "REFUSAL_CODES",
    "RIYADH",
    "SENDER_STATUSES",
    "SUCCESS",
    "SUCCESS_BODIES",
    "Account",
    "Outcome",
    "Sandbox",
    "Sender",
    "parse_multi",
]


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


class Sandbox(Admin):
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
        self.seed_demo = seed_demo
        initial_ttl = positive_int(token_ttl, "token_ttl")
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._faults = as_faults(faults)
        self._model = Model(clock)
        self._issuer = TokenIssuer(self._model.now, initial_ttl)
        self._reset_state()
        self._record = Record(journal)
        self._rules = Rules(self._model, self._issuer, self._record, success_body)

    # -- clock and settings ----------------------------------------------------

    def now(self) -> float:
        """Sandbox time: wall clock plus the admin's offset."""
        return self._model.now()

    def today(self) -> date:
        return self._model.today()

    @property
    def clock_offset(self) -> float:
        return self._model.clock_offset

    @property
    def success_body(self) -> str:
        return self._rules.success_body

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
            self._model.calls[name] += 1
            fault = decide(self._faults, self._rng, name)
            delay = self._faults.latency_ms / 1000.0
            if fault is not None and fault.kind not in (FaultKind.DROP, FaultKind.PARTIAL):
                return self._faulted(name, fault, delay)
            partial = fault is not None and fault.kind is FaultKind.PARTIAL
            body = self._rules.answer(name, params, bearer, ip, partial)
            answers = self._model.answers[name]
            if fault is not None and fault.kind is FaultKind.DROP:
                # drop after accept: the work is done, the answer lost
                answers[fault.kind.value] += 1
                return Outcome(close=True, delay_s=delay)
            if fault is not None and not is_code(body):  # PARTIAL, and it was accepted
                answers[fault.kind.value] += 1
            else:
                answers[body if is_code(body) else SUCCESS] += 1
            return Outcome(body=body.encode(), delay_s=delay)

    def _faulted(self, name: str, fault: Fault, delay: float) -> Outcome:
        answers = self._model.answers[name]
        if fault.kind is FaultKind.ERROR:
            answers[str(fault.code)] += 1
            return Outcome(body=str(fault.code).encode(), delay_s=delay)
        if fault.kind is FaultKind.HTTP5XX:
            answers[f"http_{fault.status}"] += 1
            return Outcome(fault.status, error_page(fault.status), "text/html", delay)
        if fault.kind is FaultKind.REFUSE:
            answers[f"http_{fault.status}"] += 1
            wait = f"{self._faults.refuse_retry_after:g}"
            return Outcome(fault.status, error_page(fault.status), "text/html", delay,
                           headers=(("Retry-After", wait),))
        answers[fault.kind.value] += 1
        if fault.kind is FaultKind.GARBLED:
            return Outcome(body=fault.body, content_type="text/html", delay_s=delay)
        return Outcome(close=True, delay_s=delay + self._faults.hang_s)  # HANG

    # -- OAuth -------------------------------------------------------------

    def oauth(self, action: str, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """`generate`, `refresh` or `revoke`: (HTTP status, JSON body).
        Raises KeyError for another action."""
        with self._lock:
            status, body = self._issuer.handle(action, params)
            name = f"token/{action}"
            self._model.calls[name] += 1
            self._model.answers[name][str(body.get("error", status))] += 1
            return status, body

    # -- back to the start -----------------------------------------------------

    def reset(self) -> None:
        """Back to the seed: accounts, record, counters, faults, clock.
        Issued OAuth tokens survive so a client's cached token keeps working."""
        with self._lock:
            self._faults = Faults()
            self._reset_state()
            self._record.reset()

    def _reset_state(self) -> None:
        """Accounts, clients, TTL, clock and counters back to the seed (the
        record has its own `reset`; issued tokens survive)."""
        self._issuer.reset()
        self._model.reset(seed_demo=self.seed_demo)
        if self.seed_demo:
            self._issuer.add_client(DEMO_CLIENT, DEMO_CLIENT_SECRET, DEMO_USER)
