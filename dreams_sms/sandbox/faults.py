"""Fault injection: which calls misbehave, and how.

The worker must survive a provider that is slow, refuses, hangs, answers
garbage or drops the line after it took the messages. `Faults` is the
configuration; `decide` turns it into one `Fault` for one call. Rates are
shares of one uniform draw, so they are exact partitions when they sum to <= 1.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from .reference import ENDPOINTS

SEND_ENDPOINTS = ("sendsms", "sendsms_multi")
_RATES = (
    "error_rate",
    "hang_rate",
    "http5xx_rate",
    "garbled_rate",
    "drop_after_accept_rate",
    "refuse_rate",
    "partial_rate",
)


class FaultKind(StrEnum):
    ERROR = "error"  # answer one of `error_codes`, accept nothing
    HANG = "hang"  # hold the request, then close without an answer
    HTTP5XX = "http5xx"  # 500/502/503 with an HTML page, accept nothing
    GARBLED = "garbled"  # 200 with a body no client can read, accept nothing
    DROP = "drop_after_accept"  # accept, then close without an answer
    REFUSE = "refuse"  # HTTP 429 with Retry-After, as a rate-limiting proxy does; accept nothing
    PARTIAL = "partial"  # accept every message, list an id for all but the last one


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    code: int = 0  # for ERROR
    status: int = 0  # for HTTP5XX
    body: bytes = b""  # for GARBLED


@dataclass(slots=True)
class Faults:
    """What to break. All zero (the default) means a well-behaved provider."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_codes: list[int] = field(default_factory=lambda: [-114, -118])
    error_burst: int = 0
    hang_rate: float = 0.0
    hang_s: float = 30.0
    http5xx_rate: float = 0.0
    garbled_rate: float = 0.0
    drop_after_accept_rate: float = 0.0
    refuse_rate: float = 0.0
    refuse_retry_after: float = 1.0
    partial_rate: float = 0.0
    endpoints: list[str] = field(default_factory=lambda: list(SEND_ENDPOINTS))

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse nonsense early: the admin API turns this into HTTP 400."""
        for name in _RATES:
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
            setattr(self, name, value)
        if sum(getattr(self, n) for n in _RATES) > 1.0 + 1e-9:
            raise ValueError("the fault rates must add up to at most 1")
        self.latency_ms = float(self.latency_ms)
        self.hang_s = float(self.hang_s)
        self.refuse_retry_after = float(self.refuse_retry_after)
        if self.latency_ms < 0 or self.hang_s < 0:
            raise ValueError("latency_ms and hang_s must not be negative")
        if not 0 <= self.refuse_retry_after <= 86_400:
            raise ValueError("refuse_retry_after must be between 0 and 86400 seconds")
        self.error_burst = int(self.error_burst)
        if self.error_burst < 0:
            raise ValueError("error_burst must not be negative")
        self.error_codes = [int(c) for c in _as_list(self.error_codes, "error_codes")]
        if not self.error_codes:
            raise ValueError("error_codes must not be empty")
        self.endpoints = [_endpoint(str(e)) for e in _as_list(self.endpoints, "endpoints")]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        """A copy with `changes` applied; unknown keys are an error, not ignored."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        return Faults(**{**self.to_dict(), **changes})

    @property
    def active(self) -> bool:
        return bool(self.error_burst) or any(getattr(self, n) for n in _RATES)


def _as_list(value: Any, name: str) -> list[Any]:
    if isinstance(value, str):
        value = [v for v in (p.strip() for p in value.split(",")) if v]
    if not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a list")
    return list(value)


_CANONICAL = {e.lower(): e for e in ENDPOINTS}


def canonical_endpoint(name: str) -> str | None:
    """`SendSMS` -> `sendsms`; None for a name the provider does not have."""
    return _CANONICAL.get(name.strip("/").lower())


def _endpoint(name: str) -> str:
    canonical = canonical_endpoint(name)
    if canonical is None:
        raise ValueError(f"unknown endpoint {name!r}")
    return canonical


def decide(faults: Faults, rng: random.Random, endpoint: str) -> Fault | None:
    """The fault for one call to `endpoint`, or None. Mutates `error_burst`;
    the caller holds the sandbox lock."""
    if endpoint not in faults.endpoints or not faults.active:
        return None
    if faults.error_burst > 0:
        faults.error_burst -= 1
        return Fault(FaultKind.ERROR, code=rng.choice(faults.error_codes))
    draw = rng.random()
    edge = faults.hang_rate
    if draw < edge:
        return Fault(FaultKind.HANG)
    edge += faults.http5xx_rate
    if draw < edge:
        return Fault(FaultKind.HTTP5XX, status=rng.choice((500, 502, 503)))
    edge += faults.garbled_rate
    if draw < edge:
        return Fault(FaultKind.GARBLED, body=_garbage(rng))
    edge += faults.drop_after_accept_rate
    if draw < edge:
        return Fault(FaultKind.DROP)
    edge += faults.refuse_rate
    if draw < edge:
        return Fault(FaultKind.REFUSE, status=429)
    edge += faults.partial_rate
    if draw < edge:
        return Fault(FaultKind.PARTIAL)
    edge += faults.error_rate
    if draw < edge:
        return Fault(FaultKind.ERROR, code=rng.choice(faults.error_codes))
    return None


def _garbage(rng: random.Random) -> bytes:
    """Bodies a proxy or a broken backend might send; none of them parses as a code."""
    choice = rng.randrange(3)
    if choice == 0:
        return b"<html>Gateway</html>"
    if choice == 1:
        return b"\xff\xfe" + rng.randbytes(22)
    return b""


def error_page(status: int) -> bytes:
    """The small HTML a load balancer answers with."""
    reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
    text = f"{status} {reason.get(status, 'Error')}"
    return f"<html><head><title>{text}</title></head><body><h1>{text}</h1></body></html>".encode()
