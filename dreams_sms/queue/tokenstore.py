"""One OAuth token for every worker, kept in Redis, encrypted.

Workers read the shared token; when it nears expiry the first worker to take
a short Redis lock renews it, and the others, once the lock is free, find the
new token in Redis instead of asking the provider again.

Redis is shared with the queue, Flower and whoever can reach it, so it never
holds a usable token: the token is sealed with Fernet (AES-128-CBC + HMAC)
under a key derived by HKDF-SHA256 from the client secret, which only the
workers have (from the environment, never from Redis). A token that does not
open (the secret was rotated, a value from an older version) counts as
absent: the next worker simply asks for a new one.
"""

from __future__ import annotations

import base64
import json
import logging

import redis
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dreams_sms.config import Secret
from dreams_sms.errors import ConfigError
from dreams_sms.provider.oauth import OAuthClient, Token, TokenHolder

log = logging.getLogger(__name__)

#: Fixed HKDF salt: the input is already a high-entropy secret, the salt only
#: separates this use from any other derivation from the same secret.
_SALT = b"dreams-sms/tokenstore/salt/v1"


def token_cipher(client_secret: Secret | str, context: str = "") -> Fernet:
    """The Fernet key for tokens at rest: HKDF-SHA256 of the client secret.

    `context` (the client id and the Redis key) goes into HKDF's info, so two
    deployments sharing a secret still do not share a key.
    """
    secret = client_secret.reveal() if isinstance(client_secret, Secret) else client_secret
    if not secret:
        raise ConfigError("DREAMS_CLIENT_SECRET is not set: needed to protect stored tokens")
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=_SALT,
        info=b"dreams-sms oauth token v1|" + context.encode(),
    )
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(secret.encode())))


class RedisTokenStore:
    """A `TokenStore` in one Redis key, sealed with a key from the client secret.

    Give `client_secret` here, or let `SharedTokenHolder` bind the one of its
    OAuth client; without one the store refuses to save (never in clear).
    """

    def __init__(
        self,
        r: redis.Redis,
        key: str,
        client_secret: Secret | str | None = None,
        *,
        client_id: str = "",
    ):
        self.r = r
        self.key = key
        self._cipher: Fernet | None = None
        if client_secret:
            self.bind(client_secret, client_id)

    def __repr__(self) -> str:
        return f"RedisTokenStore(key={self.key!r}, sealed={self._cipher is not None})"

    def bind(self, client_secret: Secret | str, client_id: str = "") -> None:
        """Derive the sealing key (from the secret the tokens belong to)."""
        self._cipher = token_cipher(client_secret, f"{client_id}|{self.key}")

    def load(self) -> Token | None:
        raw = self.r.get(self.key)
        if not raw or self._cipher is None:
            return None
        try:
            data = json.loads(self._cipher.decrypt(raw))
            return Token.from_dict(data)
        except InvalidToken:
            log.info("stored OAuth token does not open with this client secret; ignoring it")
            return None
        except (ValueError, TypeError, KeyError):
            return None

    def save(self, token: Token) -> None:
        if self._cipher is None:
            raise ConfigError("the token store has no client secret: it never stores in clear")
        ttl = max(int(token.expires_at - token.obtained_at) + 60, 60)
        sealed = self._cipher.encrypt(json.dumps(token.as_dict()).encode())
        self.r.set(self.key, sealed, ex=ttl)

    def lock(self, timeout: float = 30.0) -> redis.lock.Lock:
        # Redis.lock is unannotated; it builds a redis.lock.Lock (no lock_class given).
        lock: redis.lock.Lock = self.r.lock(self.key + ":lock", timeout=timeout,
                                            blocking_timeout=timeout)
        return lock


class SharedTokenHolder(TokenHolder):
    """A TokenHolder whose renewals are serialised across processes and machines."""

    def __init__(self, oauth: OAuthClient, store: RedisTokenStore, **kwargs: object):
        if store._cipher is None:  # seal with the secret of the client the tokens are for
            store.bind(oauth.settings.client_secret, oauth.settings.client_id)
        super().__init__(oauth, store=store, **kwargs)  # type: ignore[arg-type]
        self._shared = store

    def _renew(self, old: Token | None) -> Token:
        with self._shared.lock():
            current = self._shared.load()
            if current is not None and self._fresh(current) and (
                    old is None or current.access_token != old.access_token):
                return current  # another worker renewed it while we waited
            token = super()._renew(old)
            # Saved before the lock goes, so the next waiter finds it and does not
            # renew again (a second token may revoke the first at the provider).
            self._shared.save(token)
            return token
