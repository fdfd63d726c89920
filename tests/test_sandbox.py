"""The sandbox honours the wire contract: every endpoint, every code, over HTTP."""

from __future__ import annotations

import json
import re
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from dreams_sms.sandbox import SandboxServer
from dreams_sms.sandbox.testing import SandboxAdmin, SandboxAdminError, running_sandbox

AUTH = {"user": "demo", "secret_key": "demo-secret"}
CLIENT = {"client_id": "demo-client", "client_secret": "demo-client-secret"}
RIYADH = ZoneInfo("Asia/Riyadh")


def num(i: int) -> str:
    return f"9665{i:08d}"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with running_sandbox(seed=1) as srv:
        yield srv


@pytest.fixture
def admin(server: SandboxServer) -> Iterator[SandboxAdmin]:
    client = SandboxAdmin(server.url)
    client.reset()
    yield client
    client.session.close()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


class Api:
    """POSTs forms to one sandbox and checks the plain-text envelope."""

    def __init__(self, server: SandboxServer, session: requests.Session):
        self.server = server
        self.session = session

    def __call__(self, endpoint: str, auth: bool = True, headers=None, **params: str) -> str:
        data = {**AUTH, **params} if auth else params
        r = self.session.post(
            f"{self.server.api_url}/{endpoint}", data=data, headers=headers, timeout=5
        )
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert int(r.headers["Content-Length"]) == len(r.content)
        return r.text

    def send(self, to: str, message: str = "hello", sender: str = "Dreams", **extra: str) -> str:
        return self("sendsms", to=to, message=message, sender=sender, **extra)

    def multi(self, payload: object, sender: str = "Dreams", **extra: str) -> str:
        to = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        return self("sendsms_multi", to=to, sender=sender, **extra)

    def oauth(self, action: str, **data: str) -> requests.Response:
        return self.session.post(f"{self.server.oauth_url}/{action}", data=data, timeout=5)


@pytest.fixture
def api(server: SandboxServer, http: requests.Session, admin: SandboxAdmin) -> Api:
    return Api(server, http)


def balance(admin: SandboxAdmin, user: str = "demo") -> float:
    return admin.state()["accounts"][user]["balance"]


# -- transport ---------------------------------------------------------------


def test_get_form_multipart_and_query_on_post_all_carry_utf8(
    server: SandboxServer, http: requests.Session, admin: SandboxAdmin
) -> None:
    text = "مرحبا بك €"
    url = f"{server.api_url}/sendsms"
    params = {**AUTH, "to": num(1), "message": text, "sender": "Dreams"}
    responses = [
        http.get(url, params=params),
        http.post(url, data=params),
        http.post(url, files={k: (None, v) for k, v in params.items()}),
        http.post(url, params=params),  # params in the query string, empty body
    ]
    assert [r.text for r in responses] == ["Result:Success"] * 4
    assert [m["text"] for m in admin.messages()] == [text] * 4
    assert responses[3].request.body is None


@pytest.mark.parametrize(
    "path",
    [
        "/index.php/api/chk_balance",
        "/index.php/api/chk_balance/",
        "/index.php/api/CHK_Balance",
        "/api/chk_balance",
        "/api/Chk_Balance/",
    ],
)
def test_paths_and_plain_text_envelope(
    server: SandboxServer, http: requests.Session, admin: SandboxAdmin, path: str
) -> None:
    r = http.get(server.url + path, params=AUTH)
    assert r.status_code == 200
    assert r.content == b"1000000"
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["Content-Length"] == "7"


@pytest.mark.parametrize("path", ["/index.php/api/nope", "/nothing", "/index.php/token/nope"])
def test_unknown_paths_are_404(server: SandboxServer, http: requests.Session, path: str) -> None:
    assert http.post(server.url + path, data=AUTH).status_code == 404


def test_keep_alive_serves_two_requests_on_one_socket(server: SandboxServer) -> None:
    request = (
        f"GET /index.php/api/chk_user?user=demo&secret_key=demo-secret HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request + request)
        data = b""
        while data.count(b"999") < 2:
            chunk = sock.recv(4096)
            assert chunk, f"connection closed early: {data!r}"
            data += chunk
    heads = re.findall(rb"HTTP/1.1 200 OK\r\n", data)
    assert len(heads) == 2
    assert b"Connection: close" not in data


def test_oauth_is_also_served_under_index_php(server: SandboxServer, http) -> None:
    r = http.post(
        f"{server.url}/index.php/token/generate",
        data={"grant_type": "client_credentials", **CLIENT},
    )
    assert r.status_code == 200
    assert r.json()["token_type"] == "Bearer"


# -- Register and activate -----------------------------------------------------

REGISTER = {
    "user": "newbie",
    "password": "secret123",
    "name": "New Bie",
    "mobile": "966511111111",
    "email": "newbie@example.com",
}


def test_register_then_activate(api: Api, admin: SandboxAdmin) -> None:
    assert api("Register", auth=False, **REGISTER) == "999"
    account = admin.account("newbie")
    assert account["status"] == "unactivated"
    assert account["balance"] == 0
    assert re.fullmatch(r"\d{6}", account["activation_code"])
    creds = {"user": "newbie", "secret_key": account["secret_key"]}
    assert len(account["secret_key"]) >= 16
    assert api("chk_user", auth=False, **creds) == "-111"
    wrong = "000000" if account["activation_code"] != "000000" else "111111"
    assert api("activate", auth=False, code=wrong, **creds) == "-111"
    assert api("activate", auth=False, code=account["activation_code"], **creds) == "999"
    assert api("chk_user", auth=False, **creds) == "999"
    assert admin.account("newbie")["status"] == "active"


@pytest.mark.parametrize("missing", ["user", "password", "mobile", "email"])
def test_register_missing_parameter(api: Api, missing: str) -> None:
    assert api("Register", auth=False, **{**REGISTER, missing: ""}) == "-100"


def test_register_name_is_optional(api: Api) -> None:
    params = {k: v for k, v in REGISTER.items() if k != "name"}
    assert api("Register", auth=False, **params) == "999"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"user": "1abc"}, "-120"),
        ({"user": "ab-c"}, "-120"),
        ({"user": "_abc"}, "-120"),
        ({"password": "12345"}, "-121"),
        ({"user": "demo"}, "-110"),
        ({"user": "DEMO"}, "-110"),
        ({"mobile": "966500000000"}, "-111"),
        ({"email": "DEMO@example.com"}, "-112"),
    ],
)
def test_register_refusals(api: Api, admin: SandboxAdmin, change: dict, code: str) -> None:
    assert api("Register", auth=False, **{**REGISTER, **change}) == code
    assert set(admin.state()["accounts"]) == {"demo"}


def test_activate_codes(api: Api) -> None:
    assert api("activate") == "-100"  # no code
    assert api("activate", auth=False, code="000000") == "-100"
    assert api("activate", auth=False, user="demo", secret_key="nope", code="000000") == "-110"
    assert api("activate", code="123456") == "-111"
    assert api("activate", code="000000") == "999"  # the demo account's code


# -- chk_user, chk_balance -----------------------------------------------------


def test_chk_user_codes(api: Api, admin: SandboxAdmin) -> None:
    assert api("chk_user") == "999"
    assert api("chk_user", auth=False) == "-100"
    assert api("chk_user", auth=False, user="demo") == "-100"
    assert api("chk_user", auth=False, user="demo", secret_key="wrong") == "-110"
    assert api("chk_user", auth=False, user="ghost", secret_key="demo-secret") == "-110"
    admin.account_upsert(user="demo", status="unactivated")
    assert api("chk_user") == "-111"
    admin.account_upsert(user="demo", status="blocked")
    assert api("chk_user") == "-112"


def test_chk_balance_codes(api: Api, admin: SandboxAdmin) -> None:
    assert api("chk_balance") == "1000000"
    assert api("chk_balance", auth=False) == "-100"
    assert api("chk_balance", auth=False, user="demo", secret_key="x") == "-110"
    admin.set_balance(12.5)
    assert api("chk_balance") == "12.5"
    admin.set_balance(0)
    assert api("chk_balance") == "0"


# -- senders -------------------------------------------------------------------


def test_newsender_codes(api: Api, admin: SandboxAdmin) -> None:
    assert api("newsender") == "-100"
    assert api("newsender", auth=False, sendertext="Shop") == "-100"
    assert api("newsender", auth=False, user="demo", secret_key="x", sendertext="Shop") == "-110"
    for bad in ["TwelveChars!", "ABCDEFGHIJKL", "Shop_1", "متجر", "Shop!"]:
        assert api("newsender", sendertext=bad) == "-114", bad
    assert api("newsender", sendertext="Dreams") == "-113"
    assert api("newsender", sendertext="A.B-C & 1") == "999"
    assert api("newsender", sendertext="A.B-C & 1") == "-113"
    assert admin.state()["accounts"]["demo"]["senders"]["A.B-C & 1"]["status"] == "pending"
    assert api("senderstatus", sendertext="A.B-C & 1") == "-117"


def test_senderstatus_codes(api: Api, admin: SandboxAdmin) -> None:
    assert api("senderstatus") == "-100"
    assert api("senderstatus", auth=False, user="demo", secret_key="x", sendertext="D") == "-110"
    assert api("senderstatus", sendertext="Dreams") == "999"
    assert api("senderstatus", sendertext="Nobody") == "-116"
    for status, code in [("pending", "-117"), ("inactive", "-117"), ("rejected", "-118")]:
        admin.sender("Alerts", status=status)
        assert api("senderstatus", sendertext="Alerts") == code


def test_usersender_xml(api: Api, admin: SandboxAdmin) -> None:
    admin.sender("Alerts", status="pending")
    admin.sender("Promo", status="rejected")
    admin.sender("A&B", status="inactive")
    root = ET.fromstring(api("usersender"))
    assert root.tag == "usersender"
    rows = {s.findtext("text"): s for s in root.findall("sender")}
    assert list(rows) == ["Dreams", "Alerts", "Promo", "A&B"]
    statuses = {t: s.findtext("status") for t, s in rows.items()}
    assert statuses == {
        "Dreams": "Active",
        "Alerts": "UnActive",
        "Promo": "Rejected",
        "A&B": "UnActive",
    }
    assert [s.findtext("default") for s in rows.values()] == ["true", "false", "false", "false"]
    for s in rows.values():
        assert s.findtext("id").isdigit()
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", s.findtext("date"))
        assert s.find("notes") is not None


def test_usersender_codes(api: Api, admin: SandboxAdmin) -> None:
    assert api("usersender", auth=False) == "-100"
    assert api("usersender", auth=False, user="demo", secret_key="x") == "-110"
    admin.account_upsert(user="empty", secret_key="k")
    assert api("usersender", auth=False, user="empty", secret_key="k") == "-117"


# -- sendsms -------------------------------------------------------------------


def test_sendsms_records_and_charges(api: Api, admin: SandboxAdmin) -> None:
    long_text = "x" * 161  # 2 segments
    assert api.send(f"{num(1)}, {num(2)}", long_text) == "Result:Success"
    messages = admin.messages()
    assert [(m["to"], m["text"], m["sender"], m["user"]) for m in messages] == [
        (num(1), long_text, "Dreams", "demo"),
        (num(2), long_text, "Dreams", "demo"),
    ]
    assert [m["id"] for m in messages] == [1, 2]
    assert len({m["sms_id"] for m in messages}) == 2
    assert balance(admin) == 1_000_000 - 4
    assert admin.state()["accounts"]["demo"]["senders"]["Dreams"]["today"] == 2


def test_spaces_inside_numbers_are_stripped(api: Api, admin: SandboxAdmin) -> None:
    assert api.send("9665 1234 5678") == "Result:Success"
    assert admin.messages()[0]["to"] == "966512345678"


@pytest.mark.parametrize(
    "params",
    [
        {"message": "hi", "sender": "Dreams"},
        {"to": num(1), "sender": "Dreams"},
        {"to": num(1), "message": "hi"},
        {"to": num(1), "message": "   ", "sender": "Dreams"},
        {"to": f"{num(1)},", "message": "hi", "sender": "Dreams"},
        {"to": f",{num(1)}", "message": "hi", "sender": "Dreams"},
    ],
)
def test_sendsms_missing_or_malformed(api: Api, admin: SandboxAdmin, params: dict) -> None:
    assert api("sendsms", **params) == "-100"
    assert admin.stats()["accepted"] == 0


def test_sendsms_credentials_missing_is_100(api: Api) -> None:
    params = {"to": num(1), "message": "hi", "sender": "Dreams"}
    assert api("sendsms", auth=False, **params) == "-100"
    assert api("sendsms", auth=False, user="demo", **params) == "-100"


def test_sendsms_account_codes(api: Api, admin: SandboxAdmin) -> None:
    assert (
        api(
            "sendsms",
            auth=False,
            user="demo",
            secret_key="no",
            to=num(1),
            message="m",
            sender="Dreams",
        )
        == "-110"
    )
    admin.account_upsert(user="demo", status="unactivated")
    assert api.send(num(1)) == "-111"
    admin.account_upsert(user="demo", status="blocked")
    assert api.send(num(1)) == "-112"
    admin.account_upsert(user="demo", status="active", allowed_ips=["10.0.0.0/8"])
    assert api.send(num(1)) == "-124"
    assert api("chk_user") == "999"  # the allowlist is a send-only check
    admin.account_upsert(user="demo", allowed_ips=["10.1.2.3", "127.0.0.1"])
    assert api.send(num(1)) == "Result:Success"
    admin.account_upsert(user="demo", allowed_ips=[])
    assert api.send(num(1)) == "Result:Success"
    assert admin.stats()["accepted"] == 2


def test_sendsms_sender_codes(api: Api, admin: SandboxAdmin) -> None:
    assert api.send(num(1), sender="Unknown") == "-116"
    admin.sender("Alerts", status="rejected")
    assert api.send(num(1), sender="Alerts") == "-116"
    admin.sender("Alerts", status="pending")
    assert api.send(num(1), sender="Alerts") == "-115"
    admin.sender("Alerts", status="inactive")
    assert api.send(num(1), sender="Alerts") == "-115"
    admin.sender("Alerts", status="active")
    assert api.send(num(1), sender="Alerts") == "Result:Success"
    assert admin.stats()["by_sender"] == {"Alerts": 1}


@pytest.mark.parametrize(
    "bad",
    [
        "0512345678",
        "+966512345678",
        "00966512345678",
        "96651234567",
        "9665123456789",
        "966412345678",
        "9665" + "".join(chr(0x661 + i) for i in range(8)),  # Arabic-Indic digits
        "abc",
    ],
)
def test_sendsms_invalid_number(api: Api, admin: SandboxAdmin, bad: str) -> None:
    assert api.send(f"{num(1)},{bad}") == "-117"
    assert admin.stats()["accepted"] == 0
    assert balance(admin) == 1_000_000


def test_refused_numbers_first_bad_number_wins(api: Api, admin: SandboxAdmin) -> None:
    admin.refuse({num(5): -122, num(6): -117})
    assert api.send(num(5)) == "-122"
    assert api.send(num(6)) == "-117"
    assert api.send(f"{num(1)},{num(5)},bad") == "-122"
    assert api.send(f"{num(1)},bad,{num(5)}") == "-117"
    assert api.send(f"{num(1)},{num(6)},{num(5)}") == "-117"
    assert admin.stats()["accepted"] == 0
    admin.refuse(clear=True)
    assert api.send(num(5)) == "Result:Success"


def _riyadh(delta: timedelta) -> datetime:
    return datetime.now(RIYADH) + delta


def test_calendar_dates(api: Api, admin: SandboxAdmin) -> None:
    future, past = _riyadh(timedelta(days=2)), _riyadh(timedelta(hours=-2))

    def cal(when: datetime | None, **extra: str) -> str:
        params = {"is_calander": "1", **extra}
        if when is not None:
            params |= {
                "calander_date": when.strftime("%Y-%m-%d"),
                "calander_time": when.strftime("%H:%M"),
            }
        return api.send(num(1), **params)

    assert cal(future, reminder="30", reminder_text="soon", location_url="https://maps.x") == (
        "Result:Success"
    )
    assert cal(past) == "-119"
    assert cal(None) == "-119"
    assert (
        api.send(num(1), is_calander="1", calander_date="2099-02-30", calander_time="10:00")
        == "-119"
    )
    assert (
        api.send(num(1), is_calander="1", calander_date="01/01/2099", calander_time="10:00")
        == "-119"
    )
    assert (
        api.send(num(1), is_calander="1", calander_date="2099-01-01", calander_time="25:00")
        == "-119"
    )
    assert cal(future, reminder="soon") == "-119"
    assert api.send(num(1), calander_date="1999-01-01", calander_time="10:00") == (
        "Result:Success"  # dates are only checked when is_calander=1
    )
    admin.clock(3 * 86_400)  # the provider's clock moves past the date
    assert cal(future) == "-119"
    messages = admin.messages()
    assert len(messages) == 2
    assert messages[0]["options"]["reminder"] == "30"
    assert messages[0]["options"]["location_url"] == "https://maps.x"


def test_daily_limit_is_atomic_and_per_riyadh_day(api: Api, admin: SandboxAdmin) -> None:
    admin.sender("Promo", daily_limit=3)
    assert api.send(f"{num(1)},{num(2)}", sender="Promo") == "Result:Success"
    assert api.send(f"{num(3)},{num(4)}", sender="Promo") == "-123"
    assert admin.state()["accounts"]["demo"]["senders"]["Promo"]["today"] == 2
    assert api.send(num(3), sender="Promo") == "Result:Success"
    assert api.send(num(4), sender="Promo") == "-123"
    assert api.send(num(4), sender="Dreams") == "Result:Success"  # other senders unaffected
    admin.clock(86_400)
    assert admin.state()["accounts"]["demo"]["senders"]["Promo"]["today"] == 0
    assert api.send(f"{num(4)},{num(5)},{num(6)}", sender="Promo") == "Result:Success"
    admin.sender("Promo", daily_limit=None)
    assert api.send(num(7), sender="Promo") == "Result:Success"
    assert admin.stats()["by_sender"] == {"Promo": 7, "Dreams": 1}


def test_balance_counts_segments_and_is_atomic(api: Api, admin: SandboxAdmin) -> None:
    admin.set_balance(2)
    assert api.send(f"{num(1)},{num(2)},{num(3)}") == "-113"
    assert balance(admin) == 2
    admin.set_balance(3)
    assert api.send(f"{num(1)},{num(2)}", "ش" * 71) == "-113"  # 2 x 2 segments
    admin.add_balance(1)
    assert api.send(f"{num(1)},{num(2)}", "ش" * 71) == "Result:Success"
    assert balance(admin) == 0
    assert api.send(num(1)) == "-113"
    assert [m["segments"] for m in admin.messages()] == [2, 2]


@pytest.mark.parametrize(
    ("level", "code"),
    [(0, "-100"), (1, "-110"), (2, "-116"), (3, "-117"), (4, "-119"), (5, "-123"), (6, "-113")],
)
def test_check_order(api: Api, admin: SandboxAdmin, level: int, code: str) -> None:
    """Start with a request that breaks every rule and fix them one by one:
    the earliest rule still broken is the one that answers."""
    admin.set_balance(0)
    admin.sender("Promo", daily_limit=0)
    params = {
        "user": "demo",
        "secret_key": "wrong",
        "to": "bad",
        "message": "",
        "sender": "Nope",
        "is_calander": "1",
        "calander_date": _riyadh(timedelta(days=-1)).strftime("%Y-%m-%d"),
        "calander_time": "10:00",
    }
    fixes = [
        ("message", "hi"),
        ("secret_key", "demo-secret"),
        ("sender", "Promo"),
        ("to", num(1)),
        ("calander_date", _riyadh(timedelta(days=2)).strftime("%Y-%m-%d")),
    ]
    params |= dict(fixes[:level])
    if level == 6:
        admin.sender("Promo", daily_limit=10)
    assert api("sendsms", auth=False, **params) == code
    assert admin.stats()["accepted"] == 0


def test_bearer_token_authenticates_send(api: Api, admin: SandboxAdmin) -> None:
    token = api.oauth("generate", grant_type="client_credentials", **CLIENT).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert (
        api("sendsms", auth=False, headers=bearer, to=num(1), message="m", sender="Dreams")
        == "Result:Success"
    )
    assert admin.messages()[0]["user"] == "demo"
    assert api("chk_balance", auth=False, headers=bearer) == "999999"
    bad = {"Authorization": "Bearer not-a-token"}
    assert api("chk_balance", auth=False, headers=bad) == "-110"
    assert api("chk_balance", headers=bad) == "-110"  # a bad token is not rescued by user/key


# -- sendsms_multi ------------------------------------------------------------

SHAPES = [
    [[{"to": num(1), "message": "m1"}], [{"to": num(2), "message": "م2"}]],
    [{"to": num(1), "message": "m1"}, {"to": num(2), "message": "م2"}],
    {num(1): "m1", num(2): "م2"},
    [[{"to": num(1), "message": "m1"}, {"to": num(2), "message": "م2"}]],
    [{"to": int(num(1)), "message": "m1"}, {"to": num(2), "message": "م2", "extra": 1}],
]


@pytest.mark.parametrize("payload", SHAPES)
def test_sendsms_multi_shapes(api: Api, admin: SandboxAdmin, payload: object) -> None:
    assert api.multi(payload) == "Result:Success"
    assert [(m["to"], m["text"]) for m in admin.messages()] == [(num(1), "m1"), (num(2), "م2")]
    assert balance(admin) == 1_000_000 - 2


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "",
        "[]",
        "{}",
        "[[]]",
        '"966512345678"',
        "[1, 2]",
        json.dumps([{"to": num(1)}]),
        json.dumps([{"message": "m"}]),
        json.dumps([{"to": num(1), "message": ""}]),
        json.dumps([{"to": True, "message": "m"}]),
        json.dumps([{"to": None, "message": "m"}]),
        json.dumps({num(1): 5}),
        json.dumps([{"to": num(1), "message": "ok"}, "junk"]),
    ],
)
def test_sendsms_multi_malformed(api: Api, admin: SandboxAdmin, payload: str) -> None:
    assert api.multi(payload) == "-100"
    assert admin.stats()["accepted"] == 0


def test_sendsms_multi_codes_and_atomicity(api: Api, admin: SandboxAdmin) -> None:
    good = [{"to": num(i), "message": f"m{i}"} for i in range(5)]
    assert api.multi(good, sender="Nope") == "-116"
    assert (
        api(
            "sendsms_multi",
            auth=False,
            user="demo",
            secret_key="x",
            sender="Dreams",
            to=json.dumps(good),
        )
        == "-110"
    )
    assert api("sendsms_multi", to=json.dumps(good)) == "-100"  # no sender
    assert api.multi([*good, {"to": "0512345678", "message": "x"}]) == "-117"
    admin.refuse({num(3): -122})
    assert api.multi(good) == "-122"
    admin.refuse(clear=True)
    admin.set_balance(4)
    assert api.multi(good) == "-113"
    admin.sender("Dreams", daily_limit=4)
    admin.set_balance(100)
    assert api.multi(good) == "-123"
    assert admin.stats()["accepted"] == 0
    assert api.multi(good[:4]) == "Result:Success"
    assert admin.stats()["accepted"] == 4
    assert balance(admin) == 96


@pytest.mark.parametrize(
    ("option", "expected"),
    [("result", "Result:Success"), ("success", "Success"), ("sms_id", None)],
)
def test_success_body_option(option: str, expected: str | None) -> None:
    with running_sandbox(success_body=option) as srv, requests.Session() as http:
        r1 = http.post(
            f"{srv.api_url}/sendsms",
            data={**AUTH, "to": f"{num(1)},{num(2)}", "message": "a", "sender": "Dreams"},
        )
        r2 = http.post(
            f"{srv.api_url}/sendsms_multi",
            data={**AUTH, "sender": "Dreams", "to": json.dumps({num(3): "b"})},
        )
        records = SandboxAdmin(srv.url).messages()
    if expected is not None:
        assert (r1.text, r2.text) == (expected, expected)
        return
    assert r1.text == "\n".join(f"{m['sms_id']}:{m['to']}" for m in records[:2])
    assert r2.text == f"{records[2]['sms_id']}:{num(3)}"
    assert not r1.text.endswith("\n")


def test_bad_success_body_option_is_refused() -> None:
    with pytest.raises(ValueError, match="success_body"), running_sandbox(success_body="nope"):
        pass


# -- OAuth ----------------------------------------------------------------------


def test_oauth_generate(api: Api) -> None:
    r = api.oauth("generate", grant_type="client_credentials", **CLIENT)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,}", body["access_token"])
    assert body["refresh_token"] != body["access_token"]
    again = api.oauth("generate", grant_type="client_credentials", **CLIENT).json()
    assert again["access_token"] != body["access_token"]


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        ({"grant_type": "client_credentials", "client_id": "demo-client"}, 400, "invalid_request"),
        (
            {"client_id": "demo-client", "client_secret": "demo-client-secret"},
            400,
            "invalid_request",
        ),
        ({"grant_type": "password", **CLIENT}, 400, "unsupported_grant_type"),
        (
            {"grant_type": "client_credentials", "client_id": "demo-client", "client_secret": "x"},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "who", "client_secret": "x"},
            401,
            "invalid_client",
        ),
    ],
)
def test_oauth_generate_errors(api: Api, data: dict, status: int, error: str) -> None:
    r = api.oauth("generate", **data)
    assert r.status_code == status
    assert r.json()["error"] == error
    assert r.json()["error_description"]


def test_oauth_refresh_spends_the_refresh_token(api: Api) -> None:
    first = api.oauth("generate", grant_type="client_credentials", **CLIENT).json()
    r = api.oauth(
        "refresh", grant_type="refresh_token", refresh_token=first["refresh_token"], **CLIENT
    )
    assert r.status_code == 200
    second = r.json()
    assert second["token_type"] == "Bearer"
    assert {second["access_token"], second["refresh_token"]}.isdisjoint(first.values())
    bearer = {"Authorization": f"Bearer {second['access_token']}"}
    assert api("chk_user", auth=False, headers=bearer) == "999"
    reuse = api.oauth(
        "refresh", grant_type="refresh_token", refresh_token=first["refresh_token"], **CLIENT
    )
    assert (reuse.status_code, reuse.json()["error"]) == (400, "invalid_grant")
    # the access token issued with a spent refresh token still lives until it expires
    assert (
        api("chk_user", auth=False, headers={"Authorization": f"Bearer {first['access_token']}"})
        == "999"
    )


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        ({"grant_type": "refresh_token", **CLIENT}, 400, "invalid_request"),
        (
            {"grant_type": "client_credentials", "refresh_token": "r", **CLIENT},
            400,
            "unsupported_grant_type",
        ),
        (
            {
                "grant_type": "refresh_token",
                "refresh_token": "r",
                "client_id": "demo-client",
                "client_secret": "bad",
            },
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "refresh_token", "refresh_token": "unknown", **CLIENT},
            400,
            "invalid_grant",
        ),
    ],
)
def test_oauth_refresh_errors(api: Api, data: dict, status: int, error: str) -> None:
    r = api.oauth("refresh", **data)
    assert (r.status_code, r.json()["error"]) == (status, error)


def test_oauth_revoke_access_and_refresh(api: Api) -> None:
    pair = api.oauth("generate", grant_type="client_credentials", **CLIENT).json()
    bearer = {"Authorization": f"Bearer {pair['access_token']}"}
    assert api("chk_balance", auth=False, headers=bearer) == "1000000"
    r = api.oauth("revoke", token=pair["access_token"], **CLIENT)
    assert (r.status_code, r.json()) == (200, {"message": "Token revoked successfully"})
    assert api("chk_balance", auth=False, headers=bearer) == "-110"
    again = api.oauth("revoke", token=pair["access_token"], **CLIENT)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_token")

    pair = api.oauth("generate", grant_type="client_credentials", **CLIENT).json()
    assert api.oauth("revoke", token=pair["refresh_token"], **CLIENT).status_code == 200
    assert (
        api("chk_balance", auth=False, headers={"Authorization": f"Bearer {pair['access_token']}"})
        == "-110"
    )
    spent = api.oauth(
        "refresh", grant_type="refresh_token", refresh_token=pair["refresh_token"], **CLIENT
    )
    assert spent.json()["error"] == "invalid_grant"


def test_oauth_revoke_errors(api: Api) -> None:
    assert api.oauth("revoke", token="nope", **CLIENT).json()["error"] == "invalid_token"
    assert api.oauth("revoke", **CLIENT).json()["error"] == "invalid_request"
    r = api.oauth("revoke", token="t", client_id="demo-client", client_secret="bad")
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")


def test_oauth_expiry_follows_ttl_and_clock(api: Api, admin: SandboxAdmin) -> None:
    assert admin.token_ttl(60) == 60
    pair = api.oauth("generate", grant_type="client_credentials", **CLIENT).json()
    assert pair["expires_in"] == 60
    bearer = {"Authorization": f"Bearer {pair['access_token']}"}
    admin.clock(59)
    assert api("chk_user", auth=False, headers=bearer) == "999"
    admin.clock(61)
    assert api("chk_user", auth=False, headers=bearer) == "-110"
    assert api.send(num(1)) == "Result:Success"  # user + secret_key still work
    fresh = api.oauth(
        "refresh", grant_type="refresh_token", refresh_token=pair["refresh_token"], **CLIENT
    ).json()
    assert (
        api("chk_user", auth=False, headers={"Authorization": f"Bearer {fresh['access_token']}"})
        == "999"
    )


def test_token_ttl_option() -> None:
    with running_sandbox(token_ttl=120) as srv:
        r = requests.post(
            f"{srv.oauth_url}/generate",
            data={"grant_type": "client_credentials", **CLIENT},
            timeout=5,
        )
        assert r.json()["expires_in"] == 120


def test_oauth_accepts_basic_client_auth(api: Api) -> None:
    r = api.session.post(
        f"{api.server.oauth_url}/generate",
        data={"grant_type": "client_credentials"},
        auth=("demo-client", "demo-client-secret"),
    )
    assert r.status_code == 200


# -- admin -----------------------------------------------------------------------


def test_admin_off_is_404() -> None:
    with running_sandbox(admin=False) as srv:
        for method, route in [
            ("GET", "state"),
            ("GET", "stats"),
            ("POST", "reset"),
            ("GET", "accounts/demo"),
            ("POST", "faults"),
        ]:
            r = requests.request(method, f"{srv.url}/_sandbox/{route}", json={}, timeout=5)
            assert r.status_code == 404, route
        assert requests.get(f"{srv.api_url}/chk_user", params=AUTH, timeout=5).text == "999"


def test_admin_state(api: Api, admin: SandboxAdmin) -> None:
    api.send(num(1))
    api("chk_user", user="demo", secret_key="bad")
    state = admin.state()
    demo = state["accounts"]["demo"]
    assert demo["status"] == "active"
    assert demo["balance"] == 999_999
    assert demo["allowed_ips"] == []
    assert "secret_key" not in demo
    assert set(demo["senders"]) == {"Dreams", "Alerts", "Promo"}
    assert demo["senders"]["Dreams"] == {
        **demo["senders"]["Dreams"],
        "status": "active",
        "daily_limit": None,
        "today": 1,
    }
    assert state["faults"]["error_rate"] == 0
    assert state["clock_offset_s"] == 0
    assert state["counters"]["calls"] == {"sendsms": 1, "chk_user": 1}
    assert state["counters"]["answers"]["chk_user"] == {"-110": 1}
    assert state["counters"]["accepted_by_sender"] == {"Dreams": 1}
    assert state["oauth_clients"] == [{"client_id": "demo-client", "user": "demo"}]


def test_admin_account_and_upsert(api: Api, admin: SandboxAdmin) -> None:
    demo = admin.account("demo")
    assert demo["secret_key"] == "demo-secret"
    assert "activation_code" in demo
    with pytest.raises(SandboxAdminError) as err:
        admin.account("ghost")
    assert err.value.status == 404
    made = admin.account_upsert(user="shop", balance=5, status="active")
    assert made["balance"] == 5
    assert len(made["secret_key"]) >= 16
    admin.sender("ShopSMS", user="shop")
    assert (
        api(
            "sendsms",
            auth=False,
            user="shop",
            secret_key=made["secret_key"],
            to=num(1),
            message="m",
            sender="ShopSMS",
        )
        == "Result:Success"
    )
    assert api.send(num(1), sender="ShopSMS") == "-116"  # senders belong to one account
    assert admin.account_upsert(user="shop", secret_key="s2")["secret_key"] == "s2"
    for bad in [
        {"user": "x", "status": "weird"},
        {"user": "x", "balance": -1},
        {"user": "x", "allowed_ips": ["not-an-ip"]},
        {"balance": 3},
        {"user": "x", "colour": 1},
    ]:
        with pytest.raises(SandboxAdminError) as err:
            admin.account_upsert(**bad)
        assert err.value.status == 400, bad


def test_admin_messages_paging_and_filter(api: Api, admin: SandboxAdmin, http) -> None:
    api.multi({num(i): f"m{i}" for i in range(25)})
    api.send(num(99), sender="Alerts")
    page = http.get(f"{admin.url}/_sandbox/messages", params={"offset": 20, "limit": 3}).json()
    assert page["total"] == 26
    assert [m["id"] for m in page["messages"]] == [21, 22, 23]
    assert len(admin.messages(page=7)) == 26
    alerts = admin.messages(sender="Alerts")
    assert [(m["to"], m["sender"]) for m in alerts] == [(num(99), "Alerts")]
    assert admin.messages(sender="Nobody") == []
    for m in admin.messages():
        assert set(m) >= {"id", "sms_id", "to", "text", "sender", "user", "time"}


def test_admin_stats_and_duplicates(api: Api, admin: SandboxAdmin) -> None:
    api.send(f"{num(1)},{num(1)}", "same")
    api.send(num(1), "same")
    api.send(num(1), "other")
    api.send(num(1), "same", sender="Alerts")
    api.send("bad")
    stats = admin.stats()
    assert stats["accepted"] == 5
    assert stats["duplicates"] == 2
    assert stats["by_sender"] == {"Dreams": 4, "Alerts": 1}
    assert stats["calls"] == {"sendsms": 5}
    assert stats["answers"] == {"sendsms": {"999": 4, "-117": 1}}


def test_admin_balance_and_senders(admin: SandboxAdmin, api: Api) -> None:
    assert admin.set_balance(10) == 10
    assert admin.add_balance(2.5) == 12.5
    assert api("chk_balance") == "12.5"
    with pytest.raises(SandboxAdminError):
        admin.add_balance(-100)
    with pytest.raises(SandboxAdminError) as err:
        admin.set_balance(1, user="ghost")
    assert err.value.status == 404
    created = admin.sender("NewOne", status="pending", daily_limit=5)
    assert (created["status"], created["daily_limit"]) == ("pending", 5)
    assert admin.sender("NewOne")["daily_limit"] == 5  # unchanged when not given
    assert admin.sender("NewOne", daily_limit=None)["daily_limit"] is None
    for bad in [{"status": "gone"}, {"daily_limit": -1}, {"daily_limit": "5"}]:
        with pytest.raises(SandboxAdminError):
            admin.sender("NewOne", **bad)


def test_admin_refuse_validation(admin: SandboxAdmin) -> None:
    assert admin.refuse({"9665 0000 0001": -122}) == {"966500000001": -122}
    with pytest.raises(SandboxAdminError):
        admin.refuse({num(1): -113})
    assert admin.refuse(clear=True) == {}


def test_admin_lookup(api: Api, admin: SandboxAdmin) -> None:
    api.send(f"{num(1)},{num(2)}", "hello")
    mark = time.time()
    api.send(num(1), "hello")
    items = [
        {"to": num(1), "text": "hello"},
        {"to": num(2), "text": "hello"},
        {"to": num(3), "text": "hello"},
        {"to": num(1), "text": "other"},
    ]
    assert admin.lookup("Dreams", 0, items) == [2, 1, 0, 0]
    assert admin.lookup("Dreams", mark, items) == [1, 0, 0, 0]
    assert admin.lookup("Alerts", 0, items) == [0, 0, 0, 0]
    with pytest.raises(SandboxAdminError):
        admin.lookup("Dreams", 0, [{"to": num(1)}])


def test_record_time_follows_the_sandbox_clock(api: Api, admin: SandboxAdmin) -> None:
    """The worker's reconciliation asks with its own (possibly offset) clock."""
    admin.clock(3600)
    before = time.time() + 3600
    api.send(num(1))
    [record] = admin.messages()
    assert before - 0.5 <= record["time"] <= time.time() + 3600.5
    item = [{"to": num(1), "text": "hello"}]
    assert admin.lookup("Dreams", before - 1, item) == [1]
    assert admin.lookup("Dreams", before + 60, item) == [0]


def test_admin_reset_restores_the_seed(api: Api, admin: SandboxAdmin) -> None:
    api.send(num(1))
    admin.set_balance(5)
    admin.sender("Dreams", status="rejected")
    admin.faults(error_rate=0.5)
    admin.clock(1000)
    admin.refuse({num(1): -122})
    admin.account_upsert(user="other")
    admin.token_ttl(5)
    admin.reset()
    state = admin.state()
    assert set(state["accounts"]) == {"demo"}
    assert state["accounts"]["demo"]["balance"] == 1_000_000
    assert state["accounts"]["demo"]["senders"]["Dreams"]["status"] == "active"
    assert state["faults"]["error_rate"] == 0
    assert state["clock_offset_s"] == 0
    assert state["refused"] == {}
    assert state["token_ttl"] == 3600
    assert admin.stats() == {
        "accepted": 0,
        "by_sender": {},
        "calls": {},
        "answers": {},
        "duplicates": 0,
    }


def test_admin_bad_requests(admin: SandboxAdmin, http: requests.Session) -> None:
    r = http.post(
        f"{admin.url}/_sandbox/faults",
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert http.post(f"{admin.url}/_sandbox/faults", json=[1]).status_code == 400
    assert http.get(f"{admin.url}/_sandbox/nothing").status_code == 404
    assert http.get(f"{admin.url}/_sandbox/reset").status_code == 405
    assert http.post(f"{admin.url}/_sandbox/balance", json={"set": 1, "add": 1}).status_code == 400
    assert http.post(f"{admin.url}/_sandbox/clock", json={"offset_s": "x"}).status_code == 400
    assert http.post(f"{admin.url}/_sandbox/token_ttl", json={"seconds": 0}).status_code == 400


def test_no_seed_starts_empty() -> None:
    with running_sandbox(seed_demo=False) as srv:
        admin = SandboxAdmin(srv.url)
        assert admin.state()["accounts"] == {}
        r = requests.post(f"{srv.api_url}/chk_user", data=AUTH, timeout=5)
        assert r.text == "-110"


def test_a_signed_chunk_size_is_refused_at_once(server):
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(server.url)
    with socket.create_connection((u.hostname, u.port), timeout=5) as s:
        s.sendall(b"POST /index.php/api/chk_user HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n-1\r\nuser=demo\r\n")
        answer = s.recv(200)  # without the check this waited for the client to close
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
