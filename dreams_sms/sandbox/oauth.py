"""The sandbox's OAuth: client credentials and the bearer tokens issued to them.

`TokenIssuer` answers the `/token/generate`, `/token/refresh` and
`/token/revoke` calls and tells which user a bearer token stands for. It takes
no lock of its own: the `Sandbox` that owns it holds its lock around every call.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class _Token:
    kind: str  # "access" | "refresh"
    client_id: str
    expires_at: float | None
    partner: str  # the other token of the pair


class TokenIssuer:
    """OAuth clients (client_id -> secret and user) and the tokens they hold.

    `now` is the sandbox clock, so an admin's clock offset ages tokens too.
    `reset()` forgets the clients and the TTL but not the issued tokens, so a
    client's cached token keeps working across a sandbox reset."""

    __slots__ = ("_actions", "_clients", "_initial_ttl", "_now", "_tokens", "ttl")

    def __init__(self, now: Callable[[], float], ttl: int):
        self._now = now
        self._initial_ttl = ttl
        self.ttl = ttl
        self._clients: dict[str, tuple[str, str]] = {}  # client_id -> (secret, user)
        self._tokens: dict[str, _Token] = {}
        self._actions: dict[str, Callable[[Mapping[str, str]], tuple[int, dict[str, Any]]]] = {
            "generate": self._generate,
            "refresh": self._refresh,
            "revoke": self._revoke,
        }

    def reset(self) -> None:
        """No clients, the initial TTL; issued tokens survive."""
        self.ttl = self._initial_ttl
        self._clients = {}

    def add_client(self, client_id: str, secret: str, user: str) -> None:
        self._clients[client_id] = (secret, user)

    def clients(self) -> list[dict[str, str]]:
        """The clients without their secrets, as the admin state shows them."""
        return [{"client_id": c, "user": u} for c, (_, u) in self._clients.items()]

    def user_of(self, bearer: str) -> str | None:
        """The user a live access token stands for, None for any other value."""
        token = self._tokens.get(bearer)
        if token is None or token.kind != "access" or self._expired(token):
            return None
        client = self._clients.get(token.client_id)
        return client[1] if client else None

    def handle(self, action: str, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """`generate`, `refresh` or `revoke`: (HTTP status, JSON body).
        Raises KeyError for another action."""
        return self._actions[action](params)

    # -- actions -------------------------------------------------------------

    def _generate(self, p: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        grant, cid, secret = (
            _param(p, "grant_type"),
            _param(p, "client_id"),
            p.get("client_secret", ""),
        )
        if not (grant and cid and secret):
            return _oauth_error(
                400, "invalid_request", "grant_type, client_id and client_secret are required"
            )
        if grant != "client_credentials":
            return _oauth_error(
                400, "unsupported_grant_type", "grant_type must be client_credentials"
            )
        if not self._client_ok(cid, secret):
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        return 200, self._issue(cid)

    def _refresh(self, p: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        grant, refresh = _param(p, "grant_type"), _param(p, "refresh_token")
        cid, secret = _param(p, "client_id"), p.get("client_secret", "")
        if not (grant and refresh and cid and secret):
            return _oauth_error(
                400,
                "invalid_request",
                "grant_type, refresh_token, client_id and client_secret are required",
            )
        if grant != "refresh_token":
            return _oauth_error(400, "unsupported_grant_type", "grant_type must be refresh_token")
        if not self._client_ok(cid, secret):
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        token = self._tokens.get(refresh)
        if token is None or token.kind != "refresh" or token.client_id != cid:
            return _oauth_error(400, "invalid_grant", "The refresh token is invalid or spent")
        del self._tokens[refresh]  # spent; the access token issued with it lives on
        return 200, self._issue(cid)

    def _revoke(self, p: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        value, cid, secret = _param(p, "token"), _param(p, "client_id"), p.get("client_secret", "")
        if not (value and cid and secret):
            return _oauth_error(
                400, "invalid_request", "token, client_id and client_secret are required"
            )
        if not self._client_ok(cid, secret):
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        token = self._tokens.get(value)
        if token is None or token.client_id != cid or self._expired(token):
            return _oauth_error(400, "invalid_token", "The token is unknown or already revoked")
        del self._tokens[value]
        if token.kind == "refresh":  # logging out ends the session's access token too
            self._tokens.pop(token.partner, None)
        return 200, {"message": "Token revoked successfully"}

    # -- internals -----------------------------------------------------------

    def _client_ok(self, cid: str, secret: str) -> bool:
        client = self._clients.get(cid)
        return client is not None and hmac.compare_digest(client[0].encode(), secret.encode())

    def _issue(self, cid: str) -> dict[str, Any]:
        now = self._now()
        for value in [v for v, t in self._tokens.items() if self._expired(t, now)]:
            del self._tokens[value]
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self._tokens[access] = _Token("access", cid, now + self.ttl, refresh)
        self._tokens[refresh] = _Token("refresh", cid, None, access)
        return {
            "token_type": "Bearer",
            "expires_in": self.ttl,
            "access_token": access,
            "refresh_token": refresh,
        }

    def _expired(self, token: _Token, now: float | None = None) -> bool:
        if token.expires_at is None:
            return False
        return (self._now() if now is None else now) >= token.expires_at


def _param(p: Mapping[str, str], name: str) -> str:
    return p.get(name, "").strip()


def _oauth_error(status: int, error: str, description: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": error, "error_description": description}
