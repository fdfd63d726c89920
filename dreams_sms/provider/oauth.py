"""OAuth 2.0 client-credentials tokens for the provider, and a holder that keeps one fresh.

The token endpoints speak JSON and HTTP status codes, unlike the API's bare
codes in 200 answers, so they get their own small parser. Transport failures
go through the client's single mapping (`client.post_form`).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import requests

from dreams_sms.config import Settings
from dreams_sms.errors import OAuthError, ServerError
from dreams_sms.provider.client import http_refusal, new_session, parse_retry_after, post_form
from dreams_sms.provider.redact import redact
from dreams_sms.provider.responses import garbled, text_of

__all__ = ["OAuthClient", "Token", "TokenHolder", "TokenStore"]

#: OAuth `error` values after which a refresh token is useless and a new grant is needed.
DEAD_REFRESH = ("invalid_grant",)


@dataclass(frozen=True, slots=True)
class Token:
    """An access token and when we got it. The repr never shows the token strings."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: float
    refresh_token: str | None = field(default=None, repr=False)
    obtained_at: float = 0.0

    @property
    def expires_at(self) -> float:
        return self.obtained_at + self.expires_in

    def as_dict(self) -> dict[str, Any]:
        """Plain data for a shared store (Redis); the store must protect it."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "obtained_at": self.obtained_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Token:
        return cls(
            access_token=str(data["access_token"]),
            token_type=str(data.get("token_type") or "Bearer"),
            expires_in=float(data["expires_in"]),
            refresh_token=data.get("refresh_token") or None,
            obtained_at=float(data.get("obtained_at", 0.0)),
        )


class TokenStore(Protocol):
    """Where a `TokenHolder` shares its token (one per process, or Redis for a fleet)."""

    def load(self) -> Token | None: ...

    def save(self, token: Token) -> None: ...


class OAuthClient:
    """`token/generate`, `token/refresh` and `token/revoke`, one HTTP attempt each."""

    def __init__(
        self,
        settings: Settings,
        session: requests.Session | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.settings = settings
        self.url = settings.oauth_url.rstrip("/")
        self.timeout = (settings.connect_timeout, settings.read_timeout)
        self._session = session if session is not None else new_session(settings.oauth_url)
        self._clock = clock

    def __repr__(self) -> str:
        return f"OAuthClient(url={redact(self.url)!r}, client_id={self.settings.client_id!r})"

    def generate(self) -> Token:
        return self._token("generate", {"grant_type": "client_credentials"})

    def refresh(self, refresh_token: str) -> Token:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._token("refresh", form)

    def revoke(self, token: Token | str) -> None:
        """Revoke a token string. For a `Token`, log out fully: its refresh token
        first, then its access token unless that is already gone (expired or
        revoked along with the refresh token)."""
        if isinstance(token, str):
            self._post("revoke", {"token": token})
            return
        if token.refresh_token:
            self._post("revoke", {"token": token.refresh_token})
        try:
            self._post("revoke", {"token": token.access_token})
        except OAuthError as exc:
            if not token.refresh_token or exc.error != "invalid_token":
                raise

    def _token(self, name: str, form: dict[str, str]) -> Token:
        obtained_at = self._clock()  # before the call: the token's life may start any time after
        data = self._post(name, form)
        endpoint = f"token/{name}"
        access = data.get("access_token")
        expires_in = _seconds(data.get("expires_in"))
        if not isinstance(access, str) or not access or expires_in is None:
            raise garbled(endpoint, "token answer without access_token/expires_in", "")
        refresh = data.get("refresh_token")
        return Token(
            access_token=access,
            token_type=str(data.get("token_type") or "Bearer"),
            expires_in=expires_in,
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            obtained_at=obtained_at,
        )

    def _post(self, name: str, form: dict[str, str]) -> dict[str, Any]:
        self.settings.require_oauth()
        endpoint = f"token/{name}"
        data = {
            **form,
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret.reveal(),
        }
        answer = post_form(
            self._session,
            f"{self.url}/{name}",
            endpoint=endpoint,
            data=data,
            timeout=self.timeout,
            headers={"Accept": "application/json"},
            mask=[data["client_secret"]],
        )
        status, text = answer.status, text_of(answer.body)
        parsed = _json_object(text)
        if status >= 500:
            retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            raise ServerError(endpoint, f"HTTP {status}", status=status, retry_after=retry_after)
        sent_tokens = [v for k, v in form.items() if k in ("token", "refresh_token")]
        if status in (400, 401, 403):
            error = parsed.get("error") if parsed else None
            description = parsed.get("error_description") if parsed else None
            raise OAuthError(
                endpoint,
                status,
                error[:100] if isinstance(error, str) and error else f"http_{status}",
                redact(description, sent_tokens)[:300] if isinstance(description, str) else "",
            )
        refused = http_refusal(endpoint, status, answer.headers)
        if refused is not None:  # a redirect, 404, 429...: certain, and no token came back
            raise refused
        if status != 200 or parsed is None:
            raise garbled(endpoint, f"unexpected HTTP {status} answer", redact(text, sent_tokens))
        return parsed


class TokenHolder:
    """A callable that always returns a usable access token; give it to `DreamsClient`.

    It renews `margin` seconds before expiry (never more than half the token's
    life, so short test TTLs work): with the refresh token when there is one,
    else with a new grant, and with a new grant when the refresh is refused as
    `invalid_grant`. One lock, so concurrent callers trigger one renewal.
    """

    def __init__(
        self,
        oauth: OAuthClient,
        *,
        margin: float = 60.0,
        clock: Callable[[], float] = time.time,
        store: TokenStore | None = None,
    ):
        self._oauth = oauth
        self._margin = margin
        self._clock = clock
        self._store = store
        self._token: Token | None = None
        self._refused: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenHolder(token={self._token!r})"

    def __call__(self) -> str:
        with self._lock:
            token = self._token
            if not self._fresh(token) and self._store is not None:
                shared = self._store.load()
                if shared is not None and shared.access_token != self._refused:
                    token = shared
            if not self._fresh(token):
                token = self._renew(token)
                if self._store is not None:
                    self._store.save(token)
            self._token = token
            assert token is not None
            return token.access_token

    @property
    def token(self) -> Token | None:
        return self._token

    def invalidate(self) -> None:
        """Forget the current access token (the API refused it); the next call renews."""
        with self._lock:
            if self._token is not None:  # keep the refresh token: it may still be good
                self._refused = self._token.access_token
                self._token = replace(self._token, expires_in=0.0)

    def _fresh(self, token: Token | None) -> bool:
        if token is None:
            return False
        margin = min(self._margin, token.expires_in / 2)
        return self._clock() < token.expires_at - margin

    def _renew(self, old: Token | None) -> Token:
        if old is not None and old.refresh_token:
            try:
                return self._oauth.refresh(old.refresh_token)
            except OAuthError as exc:
                if exc.error not in DEAD_REFRESH:
                    raise
        return self._oauth.generate()


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None
