"""Reading where messages and campaigns stand.

A queued message has no status key of its own (its id encodes campaign and
sequence); anything else is one field in its campaign's status hash, and the
campaign hash keeps the counters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import cast

import redis

from dreams_sms.config import Settings
from dreams_sms.errors import ValidationError
from dreams_sms.provider.codes import lookup
from dreams_sms.queue import fields as cf
from dreams_sms.queue.control import Control
from dreams_sms.queue.jobs import DEFERRED, FAILED, STATE_NAMES, split_id, state_of
from dreams_sms.queue.keys import Keys
from dreams_sms.queue.quota import DailyQuota


@dataclass(frozen=True)
class MessageStatus:
    id: str
    state: str  # queued, sending, sent, deferred, failed, expired, unknown
    code: int | None = None
    description: str = ""


@dataclass(frozen=True)
class CampaignStatus:
    id: str
    total: int
    queued: int
    sending: int
    sent: int
    deferred: int
    failed: int
    expired: int
    unknown: int
    failures: dict[int, int] = field(default_factory=dict)
    sender: str = ""
    closed_today: bool = False
    cancelled: int = 0

    @property
    def done(self) -> bool:
        return self.queued == 0 and self.sending == 0 and self.deferred == 0


class StatusReader:
    def __init__(self, r: redis.Redis, settings: Settings, control: Control):
        self.r = r
        self.settings = settings
        self.keys = Keys(settings.prefix)
        self.control = control

    def message(self, message_id: str) -> MessageStatus:
        try:
            cid, seq = split_id(message_id)
        except ValueError as exc:
            raise ValidationError(str(exc), field="message_id") from None
        # The client decodes replies (decode_responses=True): str, not bytes.
        raw = cast("str | None", self.r.hget(self.keys.status(cid), seq))
        total = self.r.hget(self.keys.seqs, cid)
        if raw is None and (total is None or int(seq) > int(total)):
            raise ValidationError(f"unknown message id {message_id[:60]!r}", field="message_id")
        state, detail = state_of(raw)
        code = None
        description = ""
        if state == FAILED and detail.lstrip("-").isdigit():
            code = int(detail)
            description = lookup("sendsms_multi", code).description
        elif state == FAILED:
            description = detail
        elif state == DEFERRED:
            description = "waiting until " + dt.datetime.fromtimestamp(
                float(detail or 0), self.settings.tz).isoformat(timespec="seconds")
        return MessageStatus(message_id, STATE_NAMES[state], code, description)

    def campaign(self, campaign: str) -> CampaignStatus:
        cid = str(campaign)
        h = cast("dict[str, str]", self.r.hgetall(self.keys.campaign(cid)))  # decoded replies
        if not h:
            raise ValidationError(f"unknown campaign {cid[:60]!r}", field="campaign")

        def n(name: str) -> int:
            return int(h.get(name, 0))

        failures = {code: int(v) for k, v in h.items()
                    if (code := cf.failure_code(k)) is not None}
        done = sum(n(name) for name in cf.DONE)
        sender = h.get(cf.SENDER, "")
        # In a provider call right now: the campaign's ids among its sender's leases.
        leased = cast("list[str]", self.r.hkeys(self.keys.lease(sender))) if sender else []
        sending = sum(1 for mid in leased if mid.rpartition("-")[0] == cid)
        deferred = n(cf.DEFERRED)
        queued = max(n(cf.TOTAL) - done - sending - deferred, 0)
        closed = False
        if sender and queued and not h.get(cf.CANCELLED_AT):
            quota = DailyQuota(self.r, prefix=self.settings.prefix, tz=self.settings.tz)
            closed = quota.is_closed(sender, self.control.now())
        if closed:  # waiting for tomorrow's quota counts as deferred
            deferred, queued = deferred + queued, 0
        return CampaignStatus(cid, n(cf.TOTAL), queued, sending, n(cf.SENT), deferred,
                              n(cf.FAILED), n(cf.EXPIRED), n(cf.UNKNOWN), failures, sender,
                              closed, n(cf.CANCELLED))
