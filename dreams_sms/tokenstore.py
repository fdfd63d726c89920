"""One OAuth token for every worker, kept in Redis.

Workers read the shared token; when it nears expiry the first worker to take
a short lock renews it and the others pick the new one up.
"""

from __future__ import annotations

import json

import redis

from .oauth import Token


class RedisTokenStore:
    def __init__(self, r: redis.Redis, key: str):
        self.r = r
        self.key = key

    def load(self) -> Token | None:
        raw = self.r.get(self.key)
        return Token.from_dict(json.loads(raw)) if raw else None

    def save(self, token: Token) -> None:
        ttl = max(int(token.expires_at - token.obtained_at) + 60, 60)
        self.r.set(self.key, json.dumps(token.as_dict()), ex=ttl)
