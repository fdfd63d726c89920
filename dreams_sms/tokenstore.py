"""One OAuth token for every worker, kept in Redis.

Workers read the shared token; when it nears expiry the first worker to take
a short Redis lock renews it, and the others, once the lock is free, find the
new token in Redis instead of asking the provider again.
"""

from __future__ import annotations

import json

import redis

from .oauth import OAuthClient, Token, TokenHolder


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

    def lock(self, timeout: float = 30.0) -> redis.lock.Lock:
        return self.r.lock(self.key + ":lock", timeout=timeout, blocking_timeout=timeout)


class SharedTokenHolder(TokenHolder):
    """A TokenHolder whose renewals are serialised across processes and machines."""

    def __init__(self, oauth: OAuthClient, store: RedisTokenStore, **kwargs: object):
        super().__init__(oauth, store=store, **kwargs)  # type: ignore[arg-type]
        self._shared = store

    def _renew(self, old: Token | None) -> Token:
        with self._shared.lock():
            current = self._shared.load()
            if current is not None and self._fresh(current) and (
                    old is None or current.access_token != old.access_token):
                return current  # another worker renewed it while we waited
            return super()._renew(old)
