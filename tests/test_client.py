"""DreamsClient: requests it sends, answers it understands, failures it classifies.

Unit tests run over a fake transport adapter; the `sandbox` section drives
every endpoint, code and fault over real HTTP against the local emulator.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import pickle
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import traceback
from collections.abc import Iterator

import pytest
import requests
from fakes import FakeAdapter
from hypothesis import given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from dreams_sms.config import Secret, Settings
from dreams_sms.errors import (
    ConfigError,
    DreamsError,
    GarbledResponse,
    HttpRefused,
    InvalidOption,
    NotAccepted,
    OAuthError,
    OutcomeUnknown,
    ProviderError,
    ProviderUnreachable,
    Refusal,
    ServerError,
)
from dreams_sms.provider.client import (
    DreamsClient,
    _transport_error,
    multi_payload,
    multi_slices,
    parse_retry_after,
    split_multi,
)
from dreams_sms.provider.responses import SenderInfo, SendResult
from dreams_sms.provider.retry import is_transient
from dreams_sms.sandbox.testing import SandboxAdmin, running_sandbox

KEY = "k3y-very-secret"
TOKEN = "tok-abc.def-123"
BASE = "https://provider.test/index.php/api"


def make(*answers, token=None, on_call=None, **changes) -> tuple[DreamsClient, FakeAdapter]:
    adapter = FakeAdapter(*answers)
    session = requests.Session()
    session.mount("https://", adapter)
    settings = Settings(
        user="demo",
        secret_key=Secret(KEY),
        base_url=BASE,
        connect_timeout=2.0,
        read_timeout=7.0,
    ).with_(**changes)
    return DreamsClient(settings, session=session, token=token, on_call=on_call), adapter


# -- requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "endpoint", "fields", "answer", "result"),
    [
        (lambda c: c.activate("A1B2"), "activate", {"code": "A1B2"}, "999", None),
        (lambda c: c.check_user(), "chk_user", {}, "999", None),
        (lambda c: c.balance(), "chk_balance", {}, "1000000", 1_000_000.0),
        (lambda c: c.new_sender("Alerts"), "newsender", {"sendertext": "Alerts"}, "999", None),
        (
            lambda c: c.sender_status("Alerts"),
            "senderstatus",
            {"sendertext": "Alerts"},
            "999",
            "Active",
        ),
        (
            lambda c: c.senders(),
            "usersender",
            {},
            "<usersender><sender><id>1</id><text>Dreams</text></sender></usersender>",
            [SenderInfo("1", "Dreams", "", False, "", "")],
        ),
        (
            lambda c: c.send("966500000001", "hi", "Dreams"),
            "sendsms",
            {"to": "966500000001", "message": "hi", "sender": "Dreams"},
            "Result: Success",
            SendResult("Result: Success", recipients=("966500000001",), confirmed=(True,)),
        ),
    ],
)
def test_each_endpoint_posts_a_form_with_credentials(call, endpoint, fields, answer, result):
    client, adapter = make((200, answer))
    assert call(client) == result
    request, kwargs = adapter.sent[-1]
    assert request.method == "POST"
    assert request.url == f"{BASE}/{endpoint}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert adapter.form == {"user": "demo", "secret_key": KEY, **fields}
    assert kwargs["timeout"] == (2.0, 7.0)
    assert KEY not in request.url


def test_register_sends_no_secret_key():
    client, adapter = make((200, "999"))
    client.register("newbie", "pass123", "New Bie", "966500000009", "n@example.com")
    assert adapter.sent[-1][0].url == f"{BASE}/Register"
    assert adapter.form == {
        "user": "newbie",
        "password": "pass123",
        "name": "New Bie",
        "mobile": "966500000009",
        "email": "n@example.com",
    }


def test_no_secret_key_field_when_none_is_configured():
    client, adapter = make((200, "999"), token=lambda: TOKEN, secret_key=Secret(""))
    client.check_user()
    assert adapter.form == {"user": "demo"}
    assert adapter.sent[-1][0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_bearer_token_is_asked_for_on_every_call_and_credentials_still_sent():
    tokens = iter(["t1", "t2"])
    client, adapter = make((200, "999"), (200, "999"), token=lambda: next(tokens))
    client.check_user()
    client.check_user()
    assert [r.headers["Authorization"] for r, _ in adapter.sent] == ["Bearer t1", "Bearer t2"]
    assert adapter.form["secret_key"] == KEY


def test_base_url_trailing_slash_is_tolerated():
    client, adapter = make((200, "5"), base_url=BASE + "/")
    client.balance()
    assert adapter.sent[-1][0].url == f"{BASE}/chk_balance"


def test_no_redirects_are_followed():
    client, adapter = make((302, ""))
    with pytest.raises(HttpRefused) as info:
        client.send("966500000001", "hi", "Dreams")
    assert len(adapter.sent) == 1  # a redirected POST would arrive as a GET without a body
    assert info.value.location == "https://provider.test/elsewhere"


def test_default_session_never_retries():
    client = DreamsClient(Settings(user="u", secret_key=Secret(KEY)))
    retry = client._session.get_adapter("https://x").max_retries
    assert (retry.total, retry.read) == (0, False)
    client.close()


def test_usersender_no_sender_is_an_empty_list():
    client, _ = make((200, "-117"))
    assert client.senders() == []
    client, _ = make((200, "-110"))
    with pytest.raises(ProviderError):
        client.senders()


# -- sendsms options -----------------------------------------------------------


def test_all_send_options_are_sent_with_the_providers_spelling():
    client, adapter = make((200, "Result:Success"))
    client.send(
        "966500000001",
        "Meeting",
        "Dreams",
        is_calander=1,
        calander_date="2031-01-02",
        calander_time="09:30",
        reminder=15,
        reminder_text="soon",
        location_url="https://maps.google.com/?q=24.7,46.7",
    )
    assert adapter.form == {
        "user": "demo",
        "secret_key": KEY,
        "to": "966500000001",
        "message": "Meeting",
        "sender": "Dreams",
        "is_calander": "1",
        "calander_date": "2031-01-02",
        "calander_time": "09:30",
        "reminder": "15",
        "reminder_text": "soon",
        "location_url": "https://maps.google.com/?q=24.7,46.7",
    }


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"is_calander": 1}, "calander_date"),
        ({"is_calander": 1, "calander_date": "2031-01-02"}, "calander_time"),
        ({"is_calander": 1, "calander_time": "10:00"}, "calander_date"),
        ({"is_calander": 2}, "is_calander"),
        ({"calander_date": "2031-01-02"}, "calander_date"),
        (
            {"is_calander": 1, "calander_date": "2031-13-02", "calander_time": "10:00"},
            "calander_date",
        ),
        (
            {"is_calander": 1, "calander_date": "02/01/2031", "calander_time": "10:00"},
            "calander_date",
        ),
        (
            {"is_calander": 1, "calander_date": "2031-02-30", "calander_time": "10:00"},
            "calander_date",
        ),
        (
            {"is_calander": 1, "calander_date": "2031-01-02", "calander_time": "24:00"},
            "calander_time",
        ),
        (
            {"is_calander": 1, "calander_date": "2031-01-02", "calander_time": "9:30"},
            "calander_time",
        ),
        (
            {"is_calander": 1, "calander_date": "2031-01-02", "calander_time": "09:30:00"},
            "calander_time",
        ),
        ({"reminder": -1}, "reminder"),
        ({"reminder": "15"}, "reminder"),
        ({"reminder": True}, "reminder"),
        ({"reminder": 1.5}, "reminder"),
        ({"location_url": "ftp://maps/x"}, "location_url"),
        ({"location_url": "javascript:alert(1)"}, "location_url"),
        ({"location_url": "https://"}, "location_url"),
        ({"reminder_text": 5}, "reminder_text"),
    ],
)
def test_bad_options_fail_before_any_request(options, field):
    client, adapter = make()
    with pytest.raises(InvalidOption) as info:
        client.send("966500000001", "hi", "Dreams", **options)
    assert info.value.field == field and field in str(info.value)
    assert adapter.sent == []


def test_is_calander_zero_and_bool_mean_no_invitation():
    # Options are checked by validate.check_options, the one rule set for the
    # producer, the CLI and the client: a false is_calander is simply left out.
    client, adapter = make((200, "Result:Success"), (200, "Result:Success"))
    client.send("966500000001", "hi", "Dreams", is_calander=0)
    assert "is_calander" not in adapter.form
    client.send("966500000001", "hi", "Dreams", is_calander=False,
                location_url="https://maps.google.com/?q=1")
    assert "is_calander" not in adapter.form and adapter.form["location_url"]
    with pytest.raises(InvalidOption, match="reminder"):
        client.send("966500000001", "hi", "Dreams", reminder=5)


# -- sendsms_multi ---------------------------------------------------------------


def test_multi_list_shape_is_the_reference_and_keeps_arabic():
    client, adapter = make((200, "Result:Success"))
    result = client.send_multi("Dreams", [("966500000001", "مرحبا"), ("966500000002", "B")])
    assert result.body == "Result:Success"
    assert adapter.sent[-1][0].url == f"{BASE}/sendsms_multi"
    form = adapter.form
    assert (form["sender"], form["user"], form["secret_key"]) == ("Dreams", "demo", KEY)
    assert json.loads(form["to"]) == [
        [{"to": "966500000001", "message": "مرحبا"}],
        [{"to": "966500000002", "message": "B"}],
    ]
    assert "مرحبا" in form["to"]  # ensure_ascii=False


def test_multi_object_shape():
    client, adapter = make((200, "1:966500000001\n2:966500000002"), multi_format="object")
    result = client.send_multi("Dreams", [("966500000001", "A"), ("966500000002", "B")])
    assert json.loads(adapter.form["to"]) == {"966500000001": "A", "966500000002": "B"}
    assert result.ids == {"966500000001": "1", "966500000002": "2"}


def test_multi_object_shape_refuses_a_number_twice():
    with pytest.raises(InvalidOption):
        multi_payload([("1", "a"), ("1", "b")], "object")
    assert json.loads(multi_payload([("1", "a"), ("1", "b")], "list")) == [
        [{"to": "1", "message": "a"}],
        [{"to": "1", "message": "b"}],
    ]
    with pytest.raises(InvalidOption):
        multi_payload([], "xml")


# -- answers -------------------------------------------------------------------


def test_provider_code_is_read_per_endpoint():
    client, _ = make((200, "-113\n"), (200, "-113"))
    with pytest.raises(ProviderError) as info:
        client.send("966500000001", "hi", "Dreams")
    assert info.value.is_balance
    with pytest.raises(ProviderError) as info:
        client.new_sender("Dreams")
    assert info.value.description == "Sender text duplicated"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_server_error_with_status(status):
    client, _ = make((status, "<html>down</html>"))
    with pytest.raises(ServerError) as info:
        client.send("966500000001", "hi", "Dreams")
    assert info.value.status == status and info.value.retryable
    assert not info.value.ambiguous


@pytest.mark.parametrize("status", [201, 204, 299, 100, 600])
def test_other_2xx_and_odd_statuses_are_garbled(status):
    client, _ = make((status, "-113"))
    with pytest.raises(GarbledResponse) as info:
        client.send("966500000001", "hi", "Dreams")
    assert str(status) in info.value.detail


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (301, Refusal.CONFIGURATION, False),
        (302, Refusal.CONFIGURATION, False),
        (307, Refusal.CONFIGURATION, False),
        (308, Refusal.CONFIGURATION, False),
        (400, Refusal.CONFIGURATION, False),
        (401, Refusal.CONFIGURATION, False),
        (403, Refusal.CONFIGURATION, False),
        (404, Refusal.CONFIGURATION, False),
        (405, Refusal.CONFIGURATION, False),
        (413, Refusal.TOO_LARGE, False),
        (408, Refusal.RETRYABLE, True),
        (429, Refusal.RETRYABLE, True),
    ],
)
def test_3xx_and_4xx_are_certain_refusals(status, kind, retryable):
    client, _ = make((status, "<html>nope</html>"))
    with pytest.raises(HttpRefused) as info:
        client.send_multi("Dreams", [("966500000001", "hi")])
    exc = info.value
    assert (exc.status, exc.kind, exc.retryable) == (status, kind, retryable)
    assert not exc.ambiguous and isinstance(exc, NotAccepted)
    assert not isinstance(exc, OutcomeUnknown)
    assert exc.endpoint == "sendsms_multi" and str(status) in str(exc)
    assert is_transient(exc) is retryable
    assert pickle.loads(pickle.dumps(exc)).kind == kind


class _RedirectAdapter(HTTPAdapter):
    def send(self, request, **kwargs):
        response = requests.Response()
        response.status_code = 301
        response._content = b""
        response.headers["Location"] = "https://u:pw-9@provider.test/index.php/api/sendsms?x=1"
        response.request, response.url = request, request.url
        return response


def test_a_301_to_https_names_the_location_without_secrets():
    session = requests.Session()
    session.mount("http://", _RedirectAdapter())
    settings = Settings(user="demo", secret_key=Secret(KEY),
                        base_url="http://provider.test/index.php/api")
    with pytest.raises(HttpRefused) as info:
        DreamsClient(settings, session=session).send("966500000001", "hi", "Dreams")
    exc = info.value
    assert exc.status == 301 and exc.is_configuration and not exc.retryable
    assert exc.location == "https://u:***@provider.test/index.php/api/sendsms?x=1"
    assert "https://u:***@provider.test" in str(exc) and "pw-9" not in str(exc)


class _HeaderAdapter(FakeAdapter):
    def __init__(self, status, headers):
        super().__init__((status, ""))
        self.extra = headers

    def send(self, request, **kwargs):
        response = super().send(request, **kwargs)
        response.headers.update(self.extra)
        return response


def _with_headers(status, headers):
    session = requests.Session()
    session.mount("https://", _HeaderAdapter(status, headers))
    return DreamsClient(Settings(user="demo", secret_key=Secret(KEY), base_url=BASE),
                        session=session)


def test_429_carries_retry_after_in_seconds():
    with pytest.raises(HttpRefused) as info:
        _with_headers(429, {"Retry-After": "120"}).balance()
    assert info.value.retry_after == 120.0 and info.value.retryable


def test_503_retry_after_as_an_http_date():
    import email.utils
    import time

    when = email.utils.formatdate(time.time() + 90, usegmt=True)
    with pytest.raises(ServerError) as info:
        _with_headers(503, {"Retry-After": when}).balance()
    assert 80 <= info.value.retry_after <= 91


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("5", 5.0), (" 2.5 ", 2.5), ("0", 0.0), ("-3", None), ("soon", None), ("nan", None),
     ("", None), (None, None), ("99999999", 86_400.0),
     ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_http_date_is_relative_to_now():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0


def test_refused_bearer_token_is_an_oauth_error():
    body = json.dumps({"error": "invalid_token", "error_description": "revoked"})
    client, _ = make((401, body), token=lambda: TOKEN)
    with pytest.raises(OAuthError) as info:
        client.check_user()
    assert (info.value.status, info.value.error, info.value.endpoint) == (
        401,
        "invalid_token",
        "chk_user",
    )


# -- transport -----------------------------------------------------------------

URL = f"{BASE}/sendsms"


def _pool_error(reason: Exception) -> MaxRetryError:
    return MaxRetryError(None, "/index.php/api/sendsms", reason)


CONNECT_FAILURES = [
    requests.ConnectTimeout(_pool_error(ConnectTimeoutError(None, "timed out"))),
    requests.ConnectionError(_pool_error(NewConnectionError(None, "[Errno 111] refused"))),
    requests.ConnectionError(
        _pool_error(NameResolutionError("provider.test", None, socket.gaierror(-2, "unknown")))
    ),
    requests.exceptions.SSLError(
        _pool_error(SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed")))
    ),
    requests.exceptions.ProxyError(_pool_error(ProxyError("proxy refused", OSError("x")))),
]
AFTER_SEND_FAILURES = [
    requests.ReadTimeout(ReadTimeoutError(None, URL, "Read timed out.")),
    requests.ConnectionError(
        ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed"))
    ),
    requests.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    ),
    requests.exceptions.ChunkedEncodingError(
        ProtocolError("Connection broken", http.client.IncompleteRead(b"ab", 3))
    ),
    requests.exceptions.SSLError(_pool_error(SSLError(ssl.SSLEOFError(8, "EOF in violation")))),
    requests.ConnectionError("something nobody classified"),
    requests.RequestException("unknown"),
    OSError("raw socket trouble"),
]


@pytest.mark.parametrize("exc", CONNECT_FAILURES, ids=lambda e: type(e).__name__)
def test_connect_phase_failures_are_unreachable_and_retryable(exc):
    client, _ = make(exc)
    with pytest.raises(ProviderUnreachable) as info:
        client.send("966500000001", "hi", "Dreams")
    assert info.value.retryable and not info.value.ambiguous


@pytest.mark.parametrize("exc", AFTER_SEND_FAILURES, ids=lambda e: type(e).__name__)
def test_post_send_failures_are_outcome_unknown(exc):
    client, _ = make(exc)
    with pytest.raises(OutcomeUnknown) as info:
        client.send("966500000001", "hi", "Dreams")
    assert info.value.ambiguous and not info.value.retryable


def test_a_protocol_error_wins_over_connect_markers():
    """A reset after the request left is ambiguous even if a connect error is in the chain."""
    inner = ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    inner.__context__ = NewConnectionError(None, "earlier")
    assert type(_transport_error("sendsms", requests.ConnectionError(inner))) is OutcomeUnknown


def test_non_http_answer_is_garbled():
    exc = requests.ConnectionError(
        ProtocolError("Connection aborted.", http.client.BadStatusLine("garbage"))
    )
    assert type(_transport_error("sendsms", exc)) is GarbledResponse


def test_bad_url_is_a_config_error():
    client = DreamsClient(Settings(user="u", secret_key=Secret(KEY), base_url="nope://x"))
    with pytest.raises(ConfigError):
        client.balance()


def test_connection_refused_over_a_real_socket():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    settings = Settings(user="u", secret_key=Secret(KEY), base_url=f"http://127.0.0.1:{port}/api")
    with DreamsClient(settings) as client, pytest.raises(ProviderUnreachable) as info:
        client.balance()
    assert "NewConnectionError" in str(info.value)


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def tls_server(cert: str, key: str) -> int:
    """Accepts TLS, reads the request, then resets the connection (no answer)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        with listener:
            while True:
                raw, _ = listener.accept()
                try:
                    conn = ctx.wrap_socket(raw, server_side=True)
                    conn.recv(65536)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    socket.socket.close(conn)
                except OSError:
                    raw.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def test_tls_certificate_failure_is_unreachable_but_a_tls_reset_after_sending_is_not(tls_cert):
    """Both arrive as requests.SSLError(MaxRetryError(urllib3 SSLError)); only the
    certificate failure proves nothing was sent."""
    port = tls_server(*tls_cert)
    settings = Settings(
        user="u",
        secret_key=Secret(KEY),
        base_url=f"https://127.0.0.1:{port}/api",
        read_timeout=2.0,
    )
    with DreamsClient(settings) as client, pytest.raises(ProviderUnreachable) as info:
        client.balance()  # self-signed: the handshake fails
    assert "SSLCertVerificationError" in str(info.value) or "certificate" in str(info.value)
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides session.verify
    session.verify = tls_cert[0]
    with DreamsClient(settings, session=session) as client, pytest.raises(OutcomeUnknown) as info:
        client.send("966500000001", "hi", "Dreams")
    assert type(info.value) is OutcomeUnknown


# -- hook ----------------------------------------------------------------------


def test_on_call_hook_sees_endpoint_duration_and_outcome():
    calls: list[tuple[str, float, str]] = []
    client, _ = make(
        (200, "Result:Success"),
        (200, "-113"),
        (503, ""),
        (200, "??"),
        requests.ReadTimeout("t"),
        requests.ConnectionError(_pool_error(NewConnectionError(None, "refused"))),
        on_call=lambda *a: calls.append(a),
    )
    for _ in range(6):
        with contextlib.suppress(DreamsError):
            client.send("966500000001", "hi", "Dreams")
    assert [c[2] for c in calls] == [
        "ok",
        "provider_error",
        "server_error",
        "garbled",
        "unknown",
        "unreachable",
    ]
    assert all(c[0] == "sendsms" and c[1] >= 0 for c in calls)


def test_a_broken_hook_does_not_break_the_call():
    def boom(*_):
        raise RuntimeError("metrics down")

    client, _ = make((200, "Result:Success"), on_call=boom)
    assert client.send("966500000001", "hi", "Dreams").body == "Result:Success"


# -- secrets ---------------------------------------------------------------------


def _everything_shown(exc: BaseException) -> str:
    shown = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    shown += [repr(v) for v in vars(exc).values()]
    shown.append(repr(pickle.loads(pickle.dumps(exc))))
    return "\n".join(shown)


@pytest.mark.parametrize(
    "answer",
    [
        (200, "-110"),
        (200, f"<html>user=demo&secret_key={KEY}</html>"),
        (500, f"secret_key={KEY}"),
        (401, json.dumps({"error": "invalid_token", "error_description": f"Bearer {TOKEN}"})),
        *CONNECT_FAILURES,
        *AFTER_SEND_FAILURES,
    ],
)
def test_no_secret_in_any_exception(answer):
    client, _ = make(answer, token=lambda: TOKEN)
    with pytest.raises(DreamsError) as info:
        client.send("966500000001", "hi", "Dreams")
    shown = _everything_shown(info.value)
    assert KEY not in shown and TOKEN not in shown and "secret_key=" + KEY not in shown


@pytest.mark.parametrize(
    "body", [f"bad key {KEY}!", f"token {TOKEN} refused", f"<p>{KEY}:{TOKEN}</p>"]
)
def test_secrets_echoed_in_any_shape_are_masked_before_parsing(body):
    client, _ = make((200, body), token=lambda: TOKEN)
    with pytest.raises(GarbledResponse) as info:
        client.send("966500000001", "hi", "Dreams")
    shown = _everything_shown(info.value)
    assert KEY not in shown and TOKEN not in shown and "***" in info.value.body


def test_register_password_echo_is_masked():
    client, _ = make((200, "password hunter22 too weak"))
    with pytest.raises(GarbledResponse) as info:
        client.register("u1", "hunter22", "U", "966500000009", "u@example.com")
    exc = info.value
    assert "hunter22" not in str(exc) + repr(exc) + exc.body + exc.detail


def test_client_repr_has_no_secret():
    client, _ = make(token=lambda: TOKEN)
    assert KEY not in repr(client) and KEY not in repr(client.settings)


# -- sandbox: the real HTTP path ---------------------------------------------------

DEMO_SECRET = "demo-secret"
OK_NUMBER, OTHER_NUMBER = "966500000001", "966500000002"
SECRETS = (DEMO_SECRET, "demo-client-secret")


def live(sandbox, user: str = "demo", key: str = DEMO_SECRET, **changes) -> DreamsClient:
    settings = Settings(
        user=user,
        secret_key=Secret(key),
        base_url=sandbox.api_url,
        connect_timeout=1.0,
        read_timeout=0.5,
    ).with_(**changes)
    return DreamsClient(settings)


@pytest.fixture
def client(sandbox, sandbox_admin) -> Iterator[DreamsClient]:
    with live(sandbox) as c:
        yield c


def clean(exc: BaseException, *secrets: str) -> BaseException:
    shown = _everything_shown(exc)
    for secret in (*SECRETS, *secrets):
        assert secret not in shown
    return exc


def code(call, *args, **kwargs) -> int:
    with pytest.raises(ProviderError) as info:
        call(*args, **kwargs)
    return clean(info.value).code


def send_one(client: DreamsClient, endpoint: str, to: str = OK_NUMBER, sender: str = "Dreams"):
    if endpoint == "sendsms":
        return client.send(to, "hello", sender)
    return client.send_multi(sender, [(OTHER_NUMBER, "first"), (to, "second")])


# every endpoint, success and every documented code


def test_register_and_activate_a_new_account(sandbox, sandbox_admin, client):
    assert client.register("newbie", "secret1", "New Bie", "966511111111", "n@example.com") is None
    account = sandbox_admin.account("newbie")
    assert account["status"] == "unactivated"
    with live(sandbox, "newbie", account["secret_key"]) as newbie:
        assert code(newbie.check_user) == -111
        assert code(newbie.activate, "999999" if account["activation_code"] != "999999" else "1")
        assert newbie.activate(account["activation_code"]) is None
        assert newbie.check_user() is None


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("", "secret1", "X", "966511111112", "x@example.com"), -100),
        (("demo", "secret1", "X", "966511111112", "x@example.com"), -110),
        (("other", "secret1", "X", "966500000000", "x@example.com"), -111),
        (("other", "secret1", "X", "966511111112", "demo@example.com"), -112),
        (("1other", "secret1", "X", "966511111112", "x@example.com"), -120),
        (("other", "12345", "X", "966511111112", "x@example.com"), -121),
    ],
)
def test_register_codes(client, args, expected):
    assert code(client.register, *args) == expected


def test_activate_codes(sandbox, client):
    assert code(client.activate, "") == -100
    assert code(client.activate, "123456") == -111
    with live(sandbox, key="wrong-key") as wrong:
        assert code(wrong.activate, "000000") == -110
    assert client.activate("000000") is None  # the demo account's code; already active


def test_check_user_codes(sandbox, sandbox_admin, client):
    assert client.check_user() is None
    with live(sandbox, user="", key="") as nobody:
        assert code(nobody.check_user) == -100
    with live(sandbox, key="wrong-key") as wrong:
        assert code(wrong.check_user) == -110
    sandbox_admin.account_upsert(user="demo", status="unactivated")
    assert code(client.check_user) == -111
    sandbox_admin.account_upsert(user="demo", status="blocked")
    assert code(client.check_user) == -112


def test_balance_and_its_codes(sandbox, sandbox_admin, client):
    assert client.balance() == 1_000_000.0
    sandbox_admin.set_balance(12.5)
    assert client.balance() == 12.5
    sandbox_admin.set_balance(0)
    assert client.balance() == 0.0
    with live(sandbox, user="", key="") as nobody:
        assert code(nobody.balance) == -100
    with live(sandbox, key="wrong-key") as wrong:
        assert code(wrong.balance) == -110


def test_new_sender_and_its_codes(sandbox, sandbox_admin, client):
    assert client.new_sender("Fresh") is None
    assert sandbox_admin.account("demo")["senders"]["Fresh"]["status"] == "pending"
    assert code(client.new_sender, "") == -100
    assert code(client.new_sender, "Dreams") == -113
    assert code(client.new_sender, "Bad~Sender!") == -114
    assert code(client.new_sender, "WayTooLongSenderName") == -114
    with live(sandbox, key="wrong-key") as wrong:
        assert code(wrong.new_sender, "Other") == -110


def test_sender_status_and_its_codes(sandbox, sandbox_admin, client):
    assert client.sender_status("Dreams") == "Active"
    assert code(client.sender_status, "") == -100
    assert code(client.sender_status, "Nobody") == -116
    sandbox_admin.sender("Alerts", status="pending")
    assert code(client.sender_status, "Alerts") == -117
    sandbox_admin.sender("Alerts", status="inactive")
    assert code(client.sender_status, "Alerts") == -117
    sandbox_admin.sender("Promo", status="rejected")
    assert code(client.sender_status, "Promo") == -118
    with live(sandbox, key="wrong-key") as wrong:
        assert code(wrong.sender_status, "Dreams") == -110


def test_senders_list_and_its_codes(sandbox, sandbox_admin, client):
    sandbox_admin.sender("Promo", status="rejected")
    senders = {s.text: s for s in client.senders()}
    assert set(senders) == {"Dreams", "Alerts", "Promo"}
    assert senders["Dreams"].status == "Active" and senders["Dreams"].default
    assert senders["Promo"].status == "Rejected" and not senders["Promo"].default
    with live(sandbox, user="", key="") as nobody:
        assert code(nobody.senders) == -100
    with live(sandbox, key="wrong-key") as wrong:
        assert code(wrong.senders) == -110
    bare = sandbox_admin.account_upsert(user="bare", balance=10)
    with live(sandbox, "bare", bare["secret_key"]) as c:
        assert c.senders() == []  # -117 "no sender for this user"


@pytest.mark.parametrize("endpoint", ["sendsms", "sendsms_multi"])
def test_send_success_is_recorded(client, sandbox_admin, endpoint):
    result = send_one(client, endpoint)
    assert result.body == "Result:Success" and result.all_confirmed
    recorded = [(m["to"], m["sender"]) for m in sandbox_admin.messages()]
    expected = [(OK_NUMBER, "Dreams")]
    if endpoint == "sendsms_multi":
        expected.insert(0, (OTHER_NUMBER, "Dreams"))
    assert recorded == expected


def _unactivated(sandbox_admin):
    sandbox_admin.account_upsert(user="demo", status="unactivated")


def _blocked(sandbox_admin):
    sandbox_admin.account_upsert(user="demo", status="blocked")


SEND_CODES = {
    -110: ({}, None),
    -111: ({}, _unactivated),
    -112: ({}, _blocked),
    -113: ({}, lambda a: a.set_balance(0)),
    -114: ({}, lambda a: a.faults(error_burst=1, error_codes=[-114])),
    -115: ({"sender": "Alerts"}, lambda a: a.sender("Alerts", status="pending")),
    -116: ({"sender": "Nobody"}, None),
    -117: ({"to": "12345"}, None),
    -118: ({}, lambda a: a.faults(error_burst=1, error_codes=[-118])),
    -119: ({}, lambda a: a.faults(error_burst=1, error_codes=[-119])),
    -122: ({}, lambda a: a.refuse({OK_NUMBER: -122})),
    -123: ({}, lambda a: a.sender("Dreams", daily_limit=0)),
    -124: ({}, lambda a: a.account_upsert(user="demo", allowed_ips=["10.9.8.0/24"])),
}


@pytest.mark.parametrize("endpoint", ["sendsms", "sendsms_multi"])
@pytest.mark.parametrize("expected", sorted(SEND_CODES))
def test_every_send_code_over_http(sandbox, sandbox_admin, endpoint, expected):
    overrides, setup = SEND_CODES[expected]
    if setup is not None:
        setup(sandbox_admin)
    key = "wrong-key" if expected == -110 else DEMO_SECRET
    with live(sandbox, key=key) as c:
        assert code(send_one, c, endpoint, **overrides) == expected
    # a refused call accepts nothing, not even part of a batch
    assert sandbox_admin.messages() == []


@pytest.mark.parametrize("endpoint", ["sendsms", "sendsms_multi"])
def test_send_missing_parameters(client, endpoint):
    if endpoint == "sendsms":
        assert code(client.send, OK_NUMBER, "", "Dreams") == -100
        assert code(client.send, "", "hi", "Dreams") == -100
    else:
        assert code(client.send_multi, "Dreams", []) == -100
        assert code(client.send_multi, "", [(OK_NUMBER, "hi")]) == -100


def test_past_calendar_date_is_119_and_a_future_one_is_sent_with_its_options(client, sandbox_admin):
    past = {"is_calander": 1, "calander_date": "2001-01-01", "calander_time": "10:00"}
    assert code(client.send, OK_NUMBER, "Meeting", "Dreams", **past) == -119
    options = {
        "is_calander": 1,
        "calander_date": "2099-05-01",
        "calander_time": "10:30",
        "reminder": 30,
        "reminder_text": "Soon",
        "location_url": "https://maps.google.com/?q=1,2",
    }
    assert client.send(OK_NUMBER, "Meeting", "Dreams", **options).body == "Result:Success"
    recorded = sandbox_admin.messages()[-1]["options"]
    assert recorded == {k: str(v) for k, v in options.items()}


def test_bad_options_never_reach_the_provider(client, sandbox_admin):
    with pytest.raises(InvalidOption):
        client.send(OK_NUMBER, "hi", "Dreams", is_calander=1, calander_date="2099-05-01")
    assert sandbox_admin.stats()["calls"].get("sendsms", 0) == 0


@pytest.mark.parametrize("shape", ["list", "object"])
def test_multi_shapes_both_land_with_arabic_text(sandbox, sandbox_admin, shape):
    with live(sandbox, multi_format=shape) as c:
        c.send_multi("Dreams", [(OK_NUMBER, "مرحبا بك"), (OTHER_NUMBER, "B")])
    assert [(m["to"], m["text"]) for m in sandbox_admin.messages()] == [
        (OK_NUMBER, "مرحبا بك"),
        (OTHER_NUMBER, "B"),
    ]


@pytest.mark.parametrize(("profile", "body"), [("success", "Success"), ("sms_id", None)])
def test_other_success_bodies(profile, body):
    with running_sandbox(success_body=profile) as srv, live(srv) as c:
        result = c.send_multi("Dreams", [(OK_NUMBER, "a"), (OTHER_NUMBER, "b")])
        messages = SandboxAdmin(srv.url).messages()
    if body is not None:
        assert result.body == body
    else:
        assert result.ids == {m["to"]: m["sms_id"] for m in messages}
    assert result.recipients == (OK_NUMBER, OTHER_NUMBER)
    assert result.confirmed == (True, True)


def test_a_listing_without_some_recipients_leaves_them_unconfirmed():
    client, _ = make((200, "77:966500000001\n78:966500000003"))
    result = client.send_multi(
        "Dreams", [("966500000001", "a"), ("966500000002", "b"), ("966500000003", "c")]
    )
    assert result.confirmed == (True, False, True) and result.unconfirmed == (1,)


def test_a_comma_list_send_is_checked_per_number():
    client, _ = make((200, "77:966500000001"))
    result = client.send("966500000001,966500000002", "hi", "Dreams")
    assert result.recipients == ("966500000001", "966500000002")
    assert result.confirmed == (True, False)


# faults: each kind maps to one exception class


def test_hang_is_outcome_unknown_after_the_read_timeout(client, sandbox_admin):
    sandbox_admin.faults(hang_rate=1.0, hang_s=1.5)
    with pytest.raises(OutcomeUnknown) as info:
        client.send(OK_NUMBER, "hi", "Dreams")
    assert type(clean(info.value)) is OutcomeUnknown and "ReadTimeoutError" in str(info.value)
    assert sandbox_admin.messages() == []  # it was not accepted, but the client cannot know that


def test_latency_beyond_the_read_timeout_is_outcome_unknown_and_did_land(client, sandbox_admin):
    sandbox_admin.faults(latency_ms=900)
    with pytest.raises(OutcomeUnknown) as info:
        client.send(OK_NUMBER, "hi", "Dreams")
    assert type(clean(info.value)) is OutcomeUnknown
    assert len(sandbox_admin.messages()) == 1


def test_drop_after_accept_is_outcome_unknown_and_did_land(client, sandbox_admin):
    sandbox_admin.faults(drop_after_accept_rate=1.0)
    for endpoint in ("sendsms", "sendsms_multi"):
        with pytest.raises(OutcomeUnknown) as info:
            send_one(client, endpoint)
        assert type(clean(info.value)) is OutcomeUnknown
        assert "RemoteDisconnected" in str(info.value) or "Connection" in str(info.value)
    assert len(sandbox_admin.messages()) == 3


def test_http_5xx_is_server_error(client, sandbox_admin):
    sandbox_admin.faults(http5xx_rate=1.0)
    for _ in range(5):
        with pytest.raises(ServerError) as info:
            client.send(OK_NUMBER, "hi", "Dreams")
        assert info.value.status in (500, 502, 503)
        clean(info.value)
    assert sandbox_admin.messages() == []


def test_garbled_answers_are_garbled(client, sandbox_admin):
    sandbox_admin.faults(garbled_rate=1.0)
    for _ in range(8):  # the sandbox picks one of several kinds of garbage
        with pytest.raises(GarbledResponse) as info:
            send_one(client, "sendsms_multi")
        assert info.value.ambiguous
        clean(info.value)


def test_injected_error_codes_are_provider_errors(client, sandbox_admin):
    sandbox_admin.faults(error_rate=1.0, error_codes=[-114, -118])
    for _ in range(4):
        with pytest.raises(ProviderError) as info:
            client.send(OK_NUMBER, "hi", "Dreams")
        assert info.value.code in (-114, -118) and info.value.retryable


def test_unknown_endpoint_page_is_a_configuration_refusal(sandbox, sandbox_admin):
    with live(sandbox, base_url=sandbox.url + "/nowhere") as c, pytest.raises(HttpRefused) as info:
        c.send("966500000001", "hi", "Dreams")
    assert info.value.status == 404 and info.value.is_configuration
    assert sandbox_admin.messages() == []


def test_a_stopped_provider_is_unreachable():
    with running_sandbox() as srv:
        url = srv.api_url
    with live(srv, base_url=url) as c, pytest.raises(ProviderUnreachable) as info:
        c.send(OK_NUMBER, "hi", "Dreams")
    assert info.value.retryable


def test_a_full_accept_queue_is_a_connect_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue so the next SYN is dropped
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        settings = Settings(
            user="demo",
            secret_key=Secret(DEMO_SECRET),
            base_url=f"http://127.0.0.1:{port}/api",
            connect_timeout=0.3,
            read_timeout=0.3,
        )
        with DreamsClient(settings) as c:
            try:
                c.balance()
            except ProviderUnreachable as exc:
                assert "ConnectTimeoutError" in str(exc)
            except OutcomeUnknown:
                pytest.skip("this kernel accepted the connection: no connect timeout to observe")
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_hook_labels_over_http(sandbox, sandbox_admin):
    seen: list[str] = []
    settings = live(sandbox).settings
    hook = lambda endpoint, seconds, outcome: seen.append(f"{endpoint}:{outcome}")  # noqa: E731
    with DreamsClient(settings, on_call=hook) as c:
        c.balance()
        sandbox_admin.faults(http5xx_rate=1.0)
        with pytest.raises(ServerError):
            c.send(OK_NUMBER, "hi", "Dreams")
    assert seen == ["chk_balance:ok", "sendsms:server_error"]


# -- batching for sendsms_multi ------------------------------------------------------


def _form_bytes(items, shape="list") -> int:
    from urllib.parse import urlencode

    return len(urlencode({"to": multi_payload(items, shape)}))


@pytest.mark.parametrize("shape", ["list", "object"])
def test_multi_slices_size_is_exact_for_the_to_field(shape):
    items = [(f"9665000000{i:02d}", t) for i, t in enumerate(["hi", "مرحبا بك", "😀 x", 'a"&b+'])]
    for n in range(1, len(items) + 1):
        exact = _form_bytes(items[:n], shape)
        fits = multi_slices(items[:n], max_count=100, max_bytes=exact, shape=shape, overhead=0)
        assert fits == [slice(0, n)]
        split = multi_slices(items[:n], max_count=100, max_bytes=exact - 1, shape=shape,
                             overhead=0)
        assert len(split) == (2 if n > 1 else 1)


def test_multi_slices_bound_count_and_bytes_and_keep_order():
    arabic = "م" * 670  # 10 segments, ~8 KB once url-encoded
    items = [(f"9665{i:08d}", arabic if i % 3 else "short") for i in range(200)]
    slices = multi_slices(items, max_count=50, max_bytes=64 * 1024)
    assert [i for s in slices for i in range(len(items))[s]] == list(range(200))
    for s in slices:
        chunk = items[s]
        assert 1 <= len(chunk) <= 50
        assert _form_bytes(chunk) + 1024 <= 64 * 1024
    assert len(slices) > 4  # bytes, not the count, were the bound here
    assert split_multi(items, max_count=50, max_bytes=64 * 1024) == [items[s] for s in slices]


def test_multi_slices_count_bound_alone():
    items = [(f"9665{i:08d}", "hi") for i in range(7)]
    assert multi_slices(items, max_count=3) == [slice(0, 3), slice(3, 6), slice(6, 7)]
    assert multi_slices([], max_count=3) == []


def test_an_item_too_big_for_any_call_gets_its_own_slice():
    items = [("966500000001", "a"), ("966500000002", "م" * 5000), ("966500000003", "b")]
    assert multi_slices(items, max_count=10, max_bytes=4096) == [
        slice(0, 1), slice(1, 2), slice(2, 3)]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.from_regex(r"9665[0-9]{8}", fullmatch=True), st.text(min_size=1,
             max_size=300).filter(lambda t: not any(0xD800 <= ord(c) <= 0xDFFF for c in t))),
             max_size=40),
    st.integers(min_value=1, max_value=15),
    st.integers(min_value=2000, max_value=20000),
    st.sampled_from(["list", "object"]),
)
def test_multi_slices_property(items, max_count, max_bytes, shape):
    if shape == "object":
        items = list(dict(items).items())
    slices = multi_slices(items, max_count=max_count, max_bytes=max_bytes, shape=shape)
    assert [i for s in slices for i in range(len(items))[s]] == list(range(len(items)))
    for s in slices:
        chunk = items[s]
        assert 1 <= len(chunk) <= max_count
        if len(chunk) > 1:
            assert _form_bytes(chunk, shape) + 1024 <= max_bytes
