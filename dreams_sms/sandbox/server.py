"""The sandbox on the wire: stdlib HTTP in front of a `Sandbox`.

Kept thin and cheap so that load tests measure the worker, not this server:
HTTP/1.1 keep-alive, one write per response (head and body together, Nagle
off), no per-request logging. Hang and drop faults really shut the socket so
that a client sees what it would see from a dead provider.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import hmac
import ipaddress
import json
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from .faults import Faults
from .redaction import redact
from .state import Outcome, Sandbox

MAX_BODY = 32 * 1024 * 1024
#: The header that carries the admin token when the sandbox has one.
ADMIN_TOKEN_HEADER = "X-Sandbox-Admin-Token"
#: Where `run` reads the admin token when none is given (keeps it out of `ps`).
ADMIN_TOKEN_ENV = "DREAMS_SANDBOX_ADMIN_TOKEN"
_JSON = "application/json"
_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_FIELD_NAME = re.compile(r'\bname="([^"]*)"|\bname=([^;\s]+)', re.IGNORECASE)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for a hanging request
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        sandbox: Sandbox,
        admin: bool,
        admin_token: str | None = None,
    ):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.sandbox = sandbox
        self.admin = admin
        self.admin_token = admin_token or None
        self.stopping = threading.Event()
        self._live: set[socket.socket] = set()
        self._live_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn): slow, and useless here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def track(self, conn: socket.socket, live: bool) -> None:
        with self._live_lock:
            (self._live.add if live else self._live.discard)(conn)

    def hang_up_all(self) -> None:
        """Close kept-alive and hanging connections so stop() leaves nothing open."""
        with self._live_lock:
            conns = list(self._live)
        for conn in conns:
            _shutdown(conn)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DreamsSandbox/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: logging every request would make the server the bottleneck
        (and request lines carry credentials in their query strings)."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # -- routing -------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        try:
            body = self._read_body()
            if body is None:
                return
            path, _, query = self.path.partition("?")
            parts = [p for p in path.split("/") if p]
            head = [p.lower() for p in parts[:3]]
            if head[:1] == ["index.php"]:
                parts, head = parts[1:], head[1:]
            if len(parts) == 2 and head[0] == "api":
                self._api(parts[1], self._params(query, body))
            elif len(parts) == 2 and head[0] == "token":
                self._oauth(parts[1].lower(), self._params(query, body))
            elif self.server.admin and parts[:1] == ["_sandbox"] and path.startswith("/_sandbox"):
                self._admin(method, parts[1:], query, body)
            else:
                self._not_found()
        except Exception:
            # The exception may quote a request (secret_key, client_secret): redacted.
            sys.stderr.write(redact(traceback.format_exc()))
            self.close_connection = True
            self._send(500, b"internal sandbox error", "text/plain; charset=utf-8")

    def _api(self, endpoint: str, params: dict[str, str]) -> None:
        auth = self.headers.get("Authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        try:
            outcome = self.server.sandbox.api(
                endpoint, params, bearer=bearer or None, ip=self.client_address[0]
            )
        except KeyError:
            self._not_found()
            return
        self._perform(outcome)

    def _oauth(self, action: str, params: dict[str, str]) -> None:
        auth = self.headers.get("Authorization", "")
        if auth[:6].lower() == "basic " and "client_id" not in params:
            try:
                cid, _, secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
                params.setdefault("client_id", unquote(cid))
                params.setdefault("client_secret", unquote(secret))
            except ValueError:
                pass
        try:
            status, answer = self.server.sandbox.oauth(action, params)
        except KeyError:
            self._not_found()
            return
        self._send(status, json.dumps(answer).encode(), _JSON, no_store=True)

    def _admin_allowed(self) -> bool:
        """With a token configured, every admin route needs it in the header."""
        expected = self.server.admin_token
        if expected is None:
            return True
        given = self.headers.get(ADMIN_TOKEN_HEADER, "")
        return hmac.compare_digest(given.encode(), expected.encode())

    def _admin(self, method: str, route: list[str], query: str, body: bytes) -> None:
        if not self._admin_allowed():
            self._json(401, {"error": f"the admin API needs the {ADMIN_TOKEN_HEADER} header"})
            return
        sandbox = self.server.sandbox
        args = dict(parse_qsl(query, keep_blank_values=True))
        key = (method, route[0] if route else "")
        data: dict[str, Any] = {}
        try:
            if method == "POST":
                data = json.loads(body or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("the body must be a JSON object")
            if len(route) == 2 and key == ("GET", "accounts"):
                answer: Any = sandbox.account(unquote(route[1]))
            elif len(route) != 1:
                self._not_found()
                return
            elif key in _ADMIN_GET:
                answer = _ADMIN_GET[key](sandbox, args)
            elif key in _ADMIN_POST:
                answer = _ADMIN_POST[key](sandbox, data)
            elif ("POST" if method == "GET" else "GET", key[1]) in {**_ADMIN_GET, **_ADMIN_POST}:
                self._json(405, {"error": f"{method} not allowed here"})
                return
            else:
                self._not_found()
                return
        except LookupError as exc:
            self._json(404, {"error": str(exc).strip("'\"")})
            return
        except (ValueError, TypeError) as exc:
            self._json(400, {"error": str(exc)})
            return
        self._json(200, answer)

    # -- I/O ----------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            self._send(400 if length < 0 else 413, b"bad Content-Length", "text/plain")
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537).split(b";")[0].strip() or b"0"
            try:
                size = int(line, 16) if line.isalnum() else -1  # no sign, no spaces
            except ValueError:
                size = -1
            if size < 0:
                self.close_connection = True
                self._send(400, b"bad chunk size", "text/plain")
                return None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                self._send(413, b"body too large", "text/plain")
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(65537)

    def _params(self, query: str, body: bytes) -> dict[str, str]:
        """Query string, then the body (which wins): url-encoded, multipart or JSON."""
        params = parse_form(query.encode("latin-1")) if query else {}
        if not body:
            return params
        ctype = self.headers.get("Content-Type", "")
        lowered = ctype.lower()
        if lowered.startswith("multipart/form-data"):
            params.update(parse_multipart(body, ctype))
        elif lowered.startswith(_JSON):
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if isinstance(data, dict):
                params.update(
                    {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
                )
        else:
            params.update(parse_form(body))
        return params

    def _perform(self, outcome: Outcome) -> None:
        if outcome.delay_s > 0 and self.server.stopping.wait(outcome.delay_s):
            outcome = Outcome(close=True)  # shutting down: never answer late
        if outcome.close:
            self.close_connection = True
            _shutdown(self.connection)
            return
        self._send(outcome.status, outcome.body, outcome.content_type, extra=outcome.headers)

    def _not_found(self) -> None:
        self._send(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode(), _JSON)

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str,
        *,
        no_store: bool = False,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Head and body in one write: two small writes on a kept-alive socket
        would meet delayed ACKs and cost 40 ms each."""
        head = (
            f"HTTP/1.1 {status} {_reason(status)}\r\n"
            f"Server: {self.server_version}\r\n"
            f"Content-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n"
        )
        if no_store:
            head += "Cache-Control: no-store\r\n"
        for name, value in extra:
            head += f"{name}: {value}\r\n"
        if self.close_connection:
            head += "Connection: close\r\n"
        self.wfile.write(head.encode("latin-1") + b"\r\n" + body)


def _loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


_escape_decode = getattr(codecs, "escape_decode", None)


def parse_form(data: bytes) -> dict[str, str]:
    """application/x-www-form-urlencoded as UTF-8, last value wins.

    parse_qsl unquotes in Python, one %XX at a time: ~300 us for a 100-message
    sendsms_multi body, more than the rest of the call. Rewriting %XX as \\xXX
    lets the C escape decoder do it; anything it rejects (a stray '%') goes
    the slow, lenient way.
    """
    if _escape_decode is not None:
        try:
            return {
                _unquote(k): _unquote(v)
                for k, _, v in (p.partition(b"=") for p in data.split(b"&") if p)
            }
        except ValueError:
            pass
    return dict(parse_qsl(data.decode("utf-8", "replace"), keep_blank_values=True))


def _unquote(raw: bytes) -> str:
    raw = raw.replace(b"+", b" ")
    if b"%" in raw:
        escaped = raw.replace(b"\\", b"\\\\").replace(b"%", b"\\x")
        raw = _escape_decode(escaped)[0]  # type: ignore[misc]
    return raw.decode("utf-8", "replace")


def parse_multipart(body: bytes, content_type: str) -> dict[str, str]:
    """multipart/form-data fields as UTF-8 strings (files included, by field name)."""
    match = _BOUNDARY.search(content_type)
    if not match:
        return {}
    delimiter = b"--" + (match.group(1) or match.group(2)).encode("latin-1")
    fields: dict[str, str] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, value = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        name = _FIELD_NAME.search(head.decode("utf-8", "replace"))
        if name is None:
            continue
        key = name.group(1) if name.group(1) is not None else name.group(2)
        fields[key] = value.removesuffix(b"\r\n").decode("utf-8", "replace")
    return fields


def _admin_messages(s: Sandbox, a: Mapping[str, str]) -> Any:
    return s.messages(
        int(a.get("offset") or 0), int(a.get("limit") or 1000), a.get("sender") or None
    )


def _admin_balance(s: Sandbox, d: dict[str, Any]) -> Any:
    user = d.get("user", "demo")
    if ("set" in d) == ("add" in d):
        raise ValueError("give exactly one of 'set' and 'add'")
    value = s.set_balance(d["set"], user) if "set" in d else s.add_balance(d["add"], user)
    return {"user": user, "balance": value}


def _admin_senders(s: Sandbox, d: dict[str, Any]) -> Any:
    extra = {"daily_limit": d["daily_limit"]} if "daily_limit" in d else {}
    return s.set_sender(
        d.get("sender", ""), user=d.get("user", "demo"), status=d.get("status"), **extra
    )


def _admin_accounts(s: Sandbox, d: dict[str, Any]) -> Any:
    allowed = {"user", "secret_key", "balance", "status", "allowed_ips"}
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ValueError(f"unknown account field(s): {', '.join(unknown)}")
    return s.upsert_account(**d) if "user" in d else s.upsert_account("")


def _admin_reset(s: Sandbox, _d: dict[str, Any]) -> Any:
    s.reset()
    return {"ok": True}


_ADMIN_GET: dict[tuple[str, str], Callable[[Sandbox, Mapping[str, str]], Any]] = {
    ("GET", "state"): lambda s, a: s.state(),
    ("GET", "stats"): lambda s, a: s.stats(),
    ("GET", "messages"): _admin_messages,
}
_ADMIN_POST: dict[tuple[str, str], Callable[[Sandbox, dict[str, Any]], Any]] = {
    ("POST", "faults"): lambda s, d: s.set_faults(
        {k: v for k, v in d.items() if k != "reset"}, reset=bool(d.get("reset"))
    ),
    ("POST", "accounts"): _admin_accounts,
    ("POST", "balance"): _admin_balance,
    ("POST", "senders"): _admin_senders,
    ("POST", "refuse"): lambda s, d: {
        "refused": s.refuse(d.get("numbers"), clear=bool(d.get("clear")))
    },
    ("POST", "clock"): lambda s, d: {"offset_s": s.set_clock(d.get("offset_s", 0))},
    ("POST", "token_ttl"): lambda s, d: {"seconds": s.set_token_ttl(d.get("seconds", 0))},
    ("POST", "lookup"): lambda s, d: {
        "accepted": s.lookup(d.get("sender", ""), d.get("since", 0), d.get("items", []))
    },
    ("POST", "reset"): _admin_reset,
    ("POST", "oauth_clients"): lambda s, d: s.add_oauth_client(
        d.get("client_id"), d.get("client_secret"), user=d.get("user", "demo")
    ),
}


class SandboxServer:
    """A `Sandbox` served over HTTP. Binds at construction (so `.port` is known),
    serves from a daemon thread after `start()`."""

    def __init__(
        self,
        sandbox: Sandbox | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        admin: bool = False,
        admin_token: str | None = None,
    ):
        self.sandbox = sandbox if sandbox is not None else Sandbox()
        self.host = host
        self.admin = admin
        self.admin_token = admin_token or None
        self._httpd = _HTTPServer((host, port), self.sandbox, admin, self.admin_token)
        self._thread: threading.Thread | None = None
        self._serving = False
        self._closed = False

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Root URL; a wildcard bind address is shown as loopback so it can be called."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/index.php/api"

    @property
    def oauth_url(self) -> str:
        return f"{self.url}/token"

    def start(self) -> SandboxServer:
        if self._thread is None:
            self._serving = True
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"sandbox:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until `stop()` or KeyboardInterrupt."""
        self._serving = True
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self.stop()

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._httpd.stopping.set()
        if self._serving:
            self._httpd.shutdown()  # returns at once if the loop already ended
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd.server_close()
        self._httpd.hang_up_all()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run(
    host: str = "127.0.0.1",
    port: int = 8025,
    admin: bool = False,
    faults: Faults | Mapping[str, Any] | None = None,
    success_body: str = "result",
    token_ttl: int = 3600,
    seed_demo: bool = True,
    seed: int | None = None,
    journal: str | None = None,
    admin_token: str | None = None,
) -> None:
    """Serve until Ctrl-C or SIGTERM; prints one line with the URL.

    `admin_token` (else $DREAMS_SANDBOX_ADMIN_TOKEN) protects the admin routes;
    without one, an admin API reachable beyond loopback gets a warning line.
    """
    if admin_token is None:
        admin_token = os.environ.get(ADMIN_TOKEN_ENV, "").strip() or None
    sandbox = Sandbox(
        faults=faults,
        success_body=success_body,
        token_ttl=token_ttl,
        seed_demo=seed_demo,
        seed=seed,
        journal=journal,
    )
    server = SandboxServer(sandbox, host=host, port=port, admin=admin, admin_token=admin_token)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    extra = ""
    if admin:
        extra = ", admin on /_sandbox" + (" (token required)" if admin_token else "")
    print(f"Dreams sandbox serving on {server.url} (API {server.api_url}{extra})", flush=True)
    if admin and not admin_token and not _loopback(host):
        print(f"warning: the admin API on {host} has no token; anyone who can reach it can "
              f"change balances and read account keys (set {ADMIN_TOKEN_ENV})",
              file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever()
