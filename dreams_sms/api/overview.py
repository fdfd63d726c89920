"""What an operator asks first, read from Redis: senders, campaigns, held messages, alerts.

Flower shows Celery tasks and workers; an operator asks how far a campaign is,
which senders are closed for today and what waits for review. This module
answers with plain dataclasses (and `Overview.to_dict` for JSON), read through
the queue's own readers (status, control, quota, store, delayed, the campaign
index), so the dashboard counts exactly what `dreams-sms status`, `limits` and
`held` print. It only reads: nothing here changes what workers do.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from dreams_sms.config import Settings
from dreams_sms.errors import ValidationError
from dreams_sms.queue import fields as cf
from dreams_sms.queue.campaigns import CampaignIndex
from dreams_sms.queue.control import PAUSE_ORDER, Control
from dreams_sms.queue.delayed import Delayed
from dreams_sms.queue.jobs import split_id
from dreams_sms.queue.keys import Keys
from dreams_sms.queue.quota import DailyQuota, local_day
from dreams_sms.queue.status import StatusReader
from dreams_sms.queue.store import Store

#: The CLI steps that settle held messages, shown beside them.
HELD_STEPS = ("dreams-sms held", "dreams-sms held delivered ID...",
              "dreams-sms held resend ID...")

#: Campaign states in the order a progress bar reads them.
STATES = ("queued", "sending", "sent", "deferred", "failed", "expired", "unknown", "cancelled")

# What lifts each global pause, for the alert that names it.
_PAUSE_HINTS = {
    "operator": "dreams-sms resume",
    "balance": "top up the account: the balance check resumes by itself",
    "http": "lifted by itself once the provider answers the balance check",
    "unknown": "lifted by itself once the provider answers; review: dreams-sms held",
    "account": "fix the account with the provider, then: dreams-sms resume",
}


@dataclass(frozen=True)
class Pause:
    """One reason sending stops: for every sender (`scope` "all") or one."""

    reason: str
    scope: str
    code: str = ""
    since: float | None = None
    by: str = ""


@dataclass(frozen=True)
class SenderView:
    name: str
    high: int  # entries in the high-priority stream
    normal: int
    deferred: int  # waiting in the delayed set: retries and scheduled sends
    used_today: int
    limit: int | None  # None: no daily limit
    closed: bool  # no more sends until the next local midnight
    closed_reason: str
    pauses: list[Pause]  # its own pause first, then every global one

    @property
    def depth(self) -> int:
        return self.high + self.normal

    @property
    def state(self) -> str:
        """One word for a badge: paused beats closed beats sending and idle."""
        if self.pauses:
            return "paused"
        if self.closed:
            return "closed"
        return "sending" if self.depth else "idle"


@dataclass(frozen=True)
class CampaignView:
    id: str
    sender: str
    created: float | None
    total: int
    counts: dict[str, int]  # STATES -> messages
    failures: dict[int, int]  # provider code -> failed messages
    closed_today: bool

    @property
    def settled(self) -> int:
        """Messages with an outcome: what the progress bar fills with."""
        return sum(self.counts[s] for s in ("sent", "failed", "expired", "unknown",
                                            "cancelled"))

    @property
    def progress(self) -> float:
        return self.settled / self.total if self.total else 1.0

    @property
    def finished(self) -> bool:
        return self.settled >= self.total


@dataclass(frozen=True)
class HeldMessage:
    id: str
    sender: str


@dataclass(frozen=True)
class HeldView:
    count: int
    newest: list[HeldMessage]  # a few, the highest sequence numbers first
    steps: tuple[str, ...] = HELD_STEPS


@dataclass(frozen=True)
class Alert:
    level: str  # "critical" (nothing is sent), "warning" (some is not), "info"
    kind: str  # pause, closed, held
    text: str
    hint: str = ""


@dataclass(frozen=True)
class Overview:
    now: float  # Redis' clock (with the test offset), the one the quota uses
    day: str  # the local day, YYYYMMDD, whose quota counts apply
    timezone: str
    balance: float | None
    pauses: list[Pause]  # global ones
    senders: list[SenderView]
    campaigns: list[CampaignView]
    held: HeldView
    alerts: list[Alert]
    #: alert counters workers recorded: "reason code" -> times raised (as /metrics shows)
    raised: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the derived figures a page shows (depth, state, progress)."""
        out = dataclasses.asdict(self)
        for view, row in zip(self.senders, out["senders"], strict=True):
            row.update(depth=view.depth, state=view.state)
        for c, row in zip(self.campaigns, out["campaigns"], strict=True):
            row.update(settled=c.settled, progress=round(c.progress, 4), finished=c.finished,
                       failures={str(k): v for k, v in c.failures.items()})
        return out


class OverviewReader:
    """Reads an `Overview`; expects a client with decode_responses=True, as elsewhere."""

    def __init__(self, r: redis.Redis, settings: Settings, *, campaigns: int = 20,
                 held: int = 10):
        self.r = r
        self.settings = settings
        self.keys = Keys(settings.prefix)
        self.control = Control(r, self.keys, test_clock=settings.test_clock)
        self.quota = DailyQuota(r, prefix=settings.prefix, tz=settings.tz)
        self.statuses = StatusReader(r, settings, self.control)
        self.index = CampaignIndex(r, self.keys)
        self.store = Store(r, self.keys, ttl=settings.status_ttl)
        self.delayed = Delayed(r, self.keys)
        self.max_campaigns = campaigns
        self.max_held = held

    def read(self) -> Overview:
        now = self.control.now()
        pauses = self.pauses()
        senders = self.senders(now, pauses)
        held = self.held()
        raw_balance = self.r.get(self.keys.balance)
        return Overview(
            now=now, day=local_day(now, self.settings.tz), timezone=str(self.settings.tz),
            balance=float(cast(str, raw_balance)) if raw_balance is not None else None,
            pauses=pauses, senders=senders, campaigns=self.campaigns(),
            held=held, alerts=alerts(pauses, senders, held), raised=self.raised())

    def pauses(self) -> list[Pause]:
        """Every global pause reason, the weightiest first (as `Control.paused` ranks)."""
        every = self.control.pauses()
        order = sorted(every, key=lambda r: (PAUSE_ORDER.get(r, len(PAUSE_ORDER)), r))
        return [_pause(every[reason], reason, "all") for reason in order]

    def sender_names(self) -> list[str]:
        """Senders that ever queued, and those an operator set a limit for (`limits`)."""
        queued = cast("set[str]", self.r.smembers(self.keys.senders))  # decoded
        limited = cast("list[str]", self.r.hkeys(self.keys.limits))
        return sorted(queued | set(limited))

    def senders(self, now: float, pauses: list[Pause] | None = None) -> list[SenderView]:
        names = self.sender_names()
        everyone = self.pauses() if pauses is None else pauses
        usage = self.quota.usage(names, now)
        deferred, _ = self.delayed.by_sender()
        pipe = self.r.pipeline(transaction=False)
        for name in names:
            for stream in self.keys.streams(name):
                pipe.xlen(stream)
        depths = pipe.execute()
        out = []
        for n, name in enumerate(names):
            used, limit = usage[name]
            closed = self.quota.is_closed(name, now)
            reason = ""
            if closed:
                reason = (f"daily limit {limit} reached" if limit is not None and used >= limit
                          else "the provider refused more today (-123)")
            own = self.control.sender_pause(name)
            mine = [_pause(own, own.get("reason", "operator"), name)] if own else []
            out.append(SenderView(name, int(depths[2 * n]), int(depths[2 * n + 1]),
                                  deferred.get(name, 0), used, limit, closed, reason,
                                  mine + everyone))
        return out

    def campaigns(self) -> list[CampaignView]:
        """The newest campaigns, newest first, with their counts by state."""
        out = []
        for cid in self.index.recent(self.max_campaigns):
            try:
                s = self.statuses.campaign(cid)
            except ValidationError:  # its hash expired since the index was read
                continue
            created = cast("str | None", self.r.hget(self.keys.campaign(cid), cf.CREATED))
            out.append(CampaignView(
                s.id, s.sender, float(created) if created else None, s.total,
                {name: int(getattr(s, name)) for name in STATES}, dict(s.failures),
                s.closed_today))
        return out

    def held(self) -> HeldView:
        """How many messages wait for an operator's verdict, and a few of their ids."""
        jobs = self.store.held(limit=1000)
        jobs.sort(key=lambda j: _seq(j.id), reverse=True)
        return HeldView(self.store.held_count(),
                        [HeldMessage(j.id, j.sender) for j in jobs[: self.max_held]])

    def raised(self) -> dict[str, int]:
        """How often workers raised each alert (the `alert|reason|code` counters that
        worker/events.py keeps in the stats hash, and /metrics exports)."""
        out: dict[str, int] = {}
        for name, value in self.r.hscan_iter(self.keys.stats, match="alert|*"):
            _, reason, code = [*cast(str, name).split("|"), "", ""][:3]
            label = f"{reason} {code}".strip() if code not in ("", "None") else reason
            out[label] = out.get(label, 0) + int(float(value))
        return dict(sorted(out.items()))


def alerts(pauses: list[Pause], senders: list[SenderView], held: HeldView) -> list[Alert]:
    """What needs a person now, the weightiest first."""
    out = [Alert("critical", "pause",
                 f"Sending is paused for every sender: {p.reason}"
                 + (f" (code {p.code})" if p.code else "") + (f", by {p.by}" if p.by else ""),
                 _PAUSE_HINTS.get(p.reason, "dreams-sms resume")) for p in pauses]
    for s in senders:
        own = [p for p in s.pauses if p.scope == s.name]
        if own:
            out.append(Alert("warning", "pause", f"Sender {s.name} is paused: {own[0].reason}",
                             f"dreams-sms resume --sender {s.name}"))
        if s.closed:
            waiting = f"; {s.depth} messages wait for tomorrow" if s.depth else ""
            out.append(Alert("warning", "closed",
                             f"Sender {s.name} is closed for today: {s.closed_reason}{waiting}",
                             "reopens at local midnight; or raise the limit: "
                             f"dreams-sms limits --set {s.name} N"))
    if held.count:
        out.append(Alert("warning", "held",
                         f"{held.count} held message(s) may or may not have been sent",
                         "check them in the provider's portal, then: dreams-sms held "
                         "delivered ID... or dreams-sms held resend ID..."))
    return out


def _pause(info: dict[str, Any], reason: str, scope: str) -> Pause:
    code = info.get("code")
    since = info.get("since")
    return Pause(str(info.get("reason", reason)), scope, "" if code is None else str(code),
                 float(since) if isinstance(since, int | float) else None,
                 str(info.get("by") or ""))


def _seq(message_id: str) -> int:
    try:
        return int(split_id(message_id)[1])
    except ValueError:
        return -1


def dumps(overview: Overview) -> str:
    """The overview as the JSON the dashboard polls (Arabic names kept readable)."""
    return json.dumps(overview.to_dict(), ensure_ascii=False, separators=(",", ":"))
