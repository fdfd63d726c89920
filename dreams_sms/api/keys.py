"""API keys: who may call the HTTP API, and for which senders.

A key is `dsms_<id>_<secret>`. Redis keeps only the sha256 of the whole key
(under `dreams:apikey:<id>`), its name and senders: the secret is shown once,
at creation, and cannot be read back. A fast hash is enough because the secret
is 256 random bits (nothing to guess, unlike a password), and it keeps the
check to one HGETALL and one hash per request. The id in the key finds the
record without scanning; the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import redis

from dreams_sms.errors import ValidationError
from dreams_sms.provider.validate import check_sender
from dreams_sms.queue.keys import Keys

PREFIX = "dsms_"
_ID = re.compile(r"[0-9a-f]{12}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_NAME = 80


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored: never its secret."""

    id: str
    name: str
    senders: tuple[str, ...]
    created: float = 0.0

    def may_use(self, sender: str) -> bool:
        return sender in self.senders


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split(secret: str) -> str | None:
    """The key id in a presented secret, or None when it cannot be one of ours."""
    if not secret.startswith(PREFIX):
        return None
    key_id, sep, rest = secret[len(PREFIX):].partition("_")
    if not sep or not _ID.fullmatch(key_id) or not _SECRET.fullmatch(rest):
        return None
    return key_id


class ApiKeys:
    """Create, verify, list and revoke API keys in Redis (decoded replies)."""

    def __init__(self, r: redis.Redis, prefix: str = "dreams"):
        self.r = r
        self.keys = Keys(prefix)

    def create(self, senders: Iterable[str], name: str = "") -> tuple[ApiKey, str]:
        """A new key for `senders`: (the record, the secret to show once)."""
        allowed = tuple(dict.fromkeys(check_sender(s) for s in senders))
        if not allowed:
            raise ValidationError("a key needs at least one sender it may use", field="sender")
        name = name.strip()
        if len(name) > MAX_NAME or not name.isprintable():
            raise ValidationError(f"name must be at most {MAX_NAME} printable characters",
                                  field="name")
        key_id = secrets.token_hex(6)
        secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(key_id, name, allowed, round(time.time(), 3))
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.keys.api_key(key_id), mapping={
            "hash": _digest(secret), "name": name, "senders": json.dumps(list(allowed)),
            "created": f"{key.created:.3f}"})
        pipe.sadd(self.keys.api_keys, key_id)
        pipe.execute()
        return key, secret

    def verify(self, secret: str) -> ApiKey | None:
        """The key a presented secret belongs to, or None (unknown, revoked, malformed)."""
        key_id = split(secret)
        if key_id is None:
            return None
        record = cast("dict[str, str]", self.r.hgetall(self.keys.api_key(key_id)))
        if not record or not hmac.compare_digest(record.get("hash", ""), _digest(secret)):
            return None
        return _key(key_id, record)

    def get(self, key_id: str) -> ApiKey | None:
        record = cast("dict[str, str]", self.r.hgetall(self.keys.api_key(key_id)))
        return _key(key_id, record) if record else None

    def list(self) -> list[ApiKey]:
        ids = sorted(cast("set[str]", self.r.smembers(self.keys.api_keys)))
        pipe = self.r.pipeline(transaction=False)
        for key_id in ids:
            pipe.hgetall(self.keys.api_key(key_id))
        found = [_key(i, rec) for i, rec in zip(ids, pipe.execute(), strict=True) if rec]
        return sorted(found, key=lambda k: (k.created, k.id))

    def revoke(self, key_id: str) -> bool:
        """Forget a key at once, for every replica; False when there was none."""
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.keys.api_key(key_id))
        pipe.srem(self.keys.api_keys, key_id)
        pipe.delete(self.keys.api_rate(key_id))
        deleted, _, _ = pipe.execute()
        return bool(deleted)


def _key(key_id: str, record: dict[str, str]) -> ApiKey:
    senders = json.loads(record.get("senders") or "[]")
    return ApiKey(key_id, record.get("name", ""), tuple(senders),
                  float(record.get("created") or 0))
