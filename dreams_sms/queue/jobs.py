"""The compact job that travels through a sender's stream.

A queued message costs one stream entry and nothing else: its id encodes its
campaign and sequence (`<campaign>-<seq>`), so "queued" needs no status key.
Short field names keep an entry near the size of its text. `Job.fields` and
`Job.from_fields` are the Python home of that encoding; the Lua one is
`queue/lua/lib/fields.lua`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

#: A stream entry's fields, in the order a take's reply lists them: id, number, text
#: (always there), then options, expiry and first enqueue time (only when set).
ENTRY_FIELDS = ("i", "t", "m", "o", "x", "a")

HIGH = "high"
NORMAL = "normal"

# Per-message states in a campaign's status hash (absent means queued).
QUEUED = "Q"
SENDING = "P"
SENT = "S"
FAILED = "F"
EXPIRED = "X"
UNKNOWN = "U"
DEFERRED = "D"
CANCELLED = "C"

STATE_NAMES = {
    QUEUED: "queued",
    SENDING: "sending",
    SENT: "sent",
    FAILED: "failed",
    EXPIRED: "expired",
    UNKNOWN: "unknown",
    DEFERRED: "deferred",
    CANCELLED: "cancelled",
}


@dataclass(slots=True)
class Job:
    id: str
    to: str
    text: str
    sender: str = ""
    options: dict[str, str] = field(default_factory=dict)
    expires_at: float | None = None
    first_at: float | None = None  # set when a job is requeued, for the age limit
    high: bool = False
    entry: str = ""  # stream entry id while held by a consumer
    sending: bool = False  # counted in its campaign's `sending` (runtime only)

    @property
    def campaign(self) -> str:
        return self.id[: self.id.rindex("-")]

    @property
    def seq(self) -> str:
        return self.id[self.id.rindex("-") + 1:]

    def fields(self) -> dict[str, str]:
        out = {"i": self.id, "t": self.to, "m": self.text}
        if self.options:
            out["o"] = json.dumps(self.options, separators=(",", ":"), ensure_ascii=False)
        if self.expires_at is not None:
            out["x"] = repr(self.expires_at)
        if self.first_at is not None:
            out["a"] = repr(self.first_at)
        return out

    @classmethod
    def from_fields(cls, fields: dict[str, str], *, sender: str = "", entry: str = "",
                    high: bool = False) -> Job:
        return cls(
            id=fields["i"],
            to=fields["t"],
            text=fields["m"],
            sender=sender,
            options=json.loads(fields["o"]) if "o" in fields else {},
            expires_at=float(fields["x"]) if "x" in fields else None,
            first_at=float(fields["a"]) if "a" in fields else None,
            high=high,
            entry=entry,
        )

    @classmethod
    def from_values(cls, values: Sequence[str], *, sender: str = "", entry: str = "",
                    high: bool = False) -> Job:
        """From ENTRY_FIELDS' values in order, '' where an optional one is absent
        (a take's reply: Lua returns no holes in a list). `from_fields`, without the dict."""
        i, t, m, o, x, a = values
        return cls(i, t, m, sender, json.loads(o) if o else {},
                   float(x) if x else None, float(a) if a else None, high, entry)

    def enqueued_at(self) -> float:
        """When the job first entered a stream: its `a` field, else its entry id's time."""
        if self.first_at is not None:
            return self.first_at
        return int(self.entry.split("-")[0]) / 1000.0 if self.entry else 0.0

    def pack(self) -> str:
        """Serialise for the delayed set (scheduled sends and retries)."""
        d = self.fields()
        d["s"] = self.sender
        if self.high:
            d["h"] = "1"
        return json.dumps(d, separators=(",", ":"), ensure_ascii=False, sort_keys=True)

    @classmethod
    def unpack(cls, raw: str) -> Job:
        d = json.loads(raw)
        return cls.from_fields(d, sender=d["s"], high=d.get("h") == "1")


def split_id(message_id: str) -> tuple[str, str]:
    cid, sep, seq = message_id.rpartition("-")
    if not sep or not cid or not seq.isdigit():
        raise ValueError(f"not a message id: {message_id[:60]!r}")
    return cid, seq


def state_of(raw: str | None) -> tuple[str, str]:
    """Split a status value like `F:-117` into (state, detail)."""
    if not raw:
        return QUEUED, ""
    state, _, detail = raw.partition(":")
    return state, detail
