"""Test helpers: a sandbox on a free port, and a client for its admin API.

Tests drive the sandbox over real HTTP like the worker does, and inspect or
steer it through `/_sandbox/` with `SandboxAdmin`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import quote

import requests

from .server import ADMIN_TOKEN_HEADER, SandboxServer
from .state import Sandbox

_UNSET: Any = object()


class SandboxAdmin:
    """Client for the admin routes of a sandbox started with `admin=True`.

    `token` is sent in the admin token header when the sandbox requires one.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        token: str | None = None,
    ):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        if token:
            self.session.headers[ADMIN_TOKEN_HEADER] = token

    def __repr__(self) -> str:
        return f"SandboxAdmin(url={self.url!r})"

    def _get(self, route: str, **params: Any) -> dict[str, Any]:
        response = self.session.get(
            f"{self.url}/_sandbox/{route}", params=params, timeout=self.timeout
        )
        return _json(response)

    def _post(self, route: str, body: Mapping[str, Any]) -> dict[str, Any]:
        response = self.session.post(
            f"{self.url}/_sandbox/{route}", json=dict(body), timeout=self.timeout
        )
        return _json(response)

    def state(self) -> dict[str, Any]:
        return self._get("state")

    def account(self, user: str) -> dict[str, Any]:
        """Includes secret_key and activation_code."""
        return self._get(f"accounts/{quote(user, safe='')}")

    def messages(self, sender: str | None = None, *, page: int = 10_000) -> list[dict[str, Any]]:
        """Every accepted message (optionally of one sender), oldest first."""
        out: list[dict[str, Any]] = []
        while True:
            params: dict[str, Any] = {"offset": len(out), "limit": page}
            if sender is not None:
                params["sender"] = sender
            batch = self._get("messages", **params)
            out.extend(batch["messages"])
            if not batch["messages"] or len(out) >= batch["total"]:
                return out

    def stats(self) -> dict[str, Any]:
        return self._get("stats")

    def faults(self, **changes: Any) -> dict[str, Any]:
        """Partial update (`reset=True` clears first); returns the faults in force."""
        return self._post("faults", changes)

    def reset(self) -> None:
        self._post("reset", {})

    def set_balance(self, value: float, user: str = "demo") -> float:
        return cast(float, self._post("balance", {"user": user, "set": value})["balance"])

    def add_balance(self, value: float, user: str = "demo") -> float:
        return cast(float, self._post("balance", {"user": user, "add": value})["balance"])

    def sender(
        self,
        name: str,
        status: str | None = None,
        daily_limit: int | None = _UNSET,
        user: str = "demo",
    ) -> dict[str, Any]:
        """Create or change a sender; `daily_limit=None` removes its limit."""
        body: dict[str, Any] = {"user": user, "sender": name}
        if status is not None:
            body["status"] = status
        if daily_limit is not _UNSET:
            body["daily_limit"] = daily_limit
        return self._post("senders", body)

    def account_upsert(self, **fields: Any) -> dict[str, Any]:
        return self._post("accounts", fields)

    def oauth_client(
        self, client_id: str, client_secret: str, user: str = "demo"
    ) -> dict[str, Any]:
        """Register an OAuth client (client credentials) for `user`."""
        body = {"client_id": client_id, "client_secret": client_secret, "user": user}
        return self._post("oauth_clients", body)

    def refuse(
        self, numbers: Mapping[str, int] | None = None, *, clear: bool = False
    ) -> dict[str, int]:
        body = {"numbers": dict(numbers or {}), "clear": clear}
        return cast("dict[str, int]", self._post("refuse", body)["refused"])

    def clock(self, offset_s: float) -> float:
        return cast(float, self._post("clock", {"offset_s": offset_s})["offset_s"])

    def token_ttl(self, seconds: int) -> int:
        return cast(int, self._post("token_ttl", {"seconds": seconds})["seconds"])

    def lookup(self, sender: str, since: float, items: Sequence[Mapping[str, str]]) -> list[int]:
        """How many times each {to, text} was accepted for `sender` since `since`."""
        body = {"sender": sender, "since": since, "items": [dict(i) for i in items]}
        return cast("list[int]", self._post("lookup", body)["accepted"])


class SandboxAdminError(RuntimeError):
    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(f"sandbox admin answered {status}: {message}")


def _json(response: requests.Response) -> dict[str, Any]:
    if response.status_code != 200:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text[:200]
        raise SandboxAdminError(response.status_code, message)
    # Every admin route answers with a JSON object.
    return cast("dict[str, Any]", response.json())


@contextmanager
def running_sandbox(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    admin: bool = True,
    admin_token: str | None = None,
    **options: Any,
) -> Iterator[SandboxServer]:
    """A sandbox on a free port for the duration of the block. `options` go to
    `Sandbox` (faults, success_body, token_ttl, seed_demo, seed)."""
    server = SandboxServer(
        Sandbox(**options), host=host, port=port, admin=admin, admin_token=admin_token
    ).start()
    try:
        yield server
    finally:
        server.stop()
