"""What the API takes and answers, as pydantic models (and so in the OpenAPI document).

Only shapes and types are checked here; what a value means (a Saudi mobile
number, a text's segments, a time within a year) is checked by the producer,
whose `ValidationError` names the field, exactly as for Python callers.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Priority = Literal["normal", "high"]


class MessageIn(BaseModel):
    """One message to queue."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"to": "0551234567", "text": "Your code is 4821", "sender": "Dreams",
         "priority": "high", "expires_in": 300}]})

    to: str = Field(description="recipient: 05XXXXXXXX, +9665XXXXXXXX, 9665XXXXXXXX, ...")
    text: str = Field(description="the message (at most DREAMS_MAX_SEGMENTS segments)")
    sender: str = Field(description="a sender name the API key may use")
    priority: Priority = Field("normal", description="`high` goes into the sender's next call")
    send_at: dt.datetime | float | None = Field(
        None, description="send at this time (ISO 8601 with an offset, or epoch seconds)")
    expires_in: float | None = Field(
        None, description="not sent within this many seconds: expired, never sent late")
    expires_at: dt.datetime | float | None = Field(
        None, description="not sent by this time: expired (ISO 8601 or epoch seconds)")
    options: dict[str, str | int] | None = Field(
        None, description="sendsms options: is_calander, calander_date, calander_time, "
        "reminder, reminder_text, location_url")


class MessageQueued(BaseModel):
    id: str = Field(description="the message id, for GET /v1/messages/{id}")


class MessageState(BaseModel):
    id: str
    state: str = Field(description="queued, sending, sent, deferred, failed, expired, "
                       "unknown or cancelled")
    code: int | None = Field(None, description="the provider's code, when it failed")
    description: str = ""


class BadRow(BaseModel):
    line: int = Field(description="the physical line of the body the row starts on (1-based)")
    reason: str


class CampaignQueued(BaseModel):
    id: str = Field(description="the campaign id, for GET /v1/campaigns/{id}")
    queued: int = Field(description="rows queued")
    bad: int = Field(description="rows refused (all of them)")
    bad_rows: list[BadRow] = Field(description="the first 1,000 refused rows, by line")


class CampaignState(BaseModel):
    id: str
    sender: str
    total: int
    queued: int
    sending: int
    sent: int
    deferred: int
    failed: int
    expired: int
    unknown: int
    cancelled: int
    failures: dict[str, int] = Field(description="failed messages by provider code")
    closed_today: bool = Field(description="the sender's daily limit is used up")
    done: bool = Field(description="nothing of it waits any more")


class SenderState(BaseModel):
    name: str
    queued: int = Field(description="messages waiting in its queues (normal and high)")
    high: int = Field(description="of which high priority")
    deferred: int = Field(description="of the queued, those waiting for tomorrow's quota")
    used_today: int = Field(description="sends counted against today's daily limit")
    daily_limit: int | None = Field(description="the daily limit every worker enforces; "
                                    "null: none")
    closed_today: bool
    paused: bool
    paused_why: str | None = Field(description="why sending is paused for it "
                                   "(operator, balance, account, http, unknown)")


class Senders(BaseModel):
    senders: list[SenderState]


class Health(BaseModel):
    status: Literal["ok"]


#: A row of a JSON campaign body (the same fields as a CSV header or a JSON Lines row).
ROW_SCHEMA = {
    "type": "object",
    "properties": {
        "to": {"type": "string", "description": "or `number`, `mobile`, `phone`"},
        "text": {"type": "string", "description": "or `message`"},
        "key": {"type": "string", "description": "an idempotency key for this row"},
        "is_calander": {"type": ["string", "integer"]},
        "calander_date": {"type": "string"},
        "calander_time": {"type": "string"},
        "reminder": {"type": ["string", "integer"]},
        "reminder_text": {"type": "string"},
        "location_url": {"type": "string"},
    },
    "required": ["to", "text"],
}
