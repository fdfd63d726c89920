"""The HTTP API over real HTTP (uvicorn in a thread) against a private Redis.

No workers here: messages stay queued, which is what these tests look at
(the queue, statuses, keys, limits, error shapes). tests/test_e2e_api.py
sends them through real workers to the sandbox.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from dreams_sms.api.app import create_app, openapi_text
from dreams_sms.api.keys import ApiKeys, split
from dreams_sms.api.testing import running_api
from dreams_sms.config import Settings
from dreams_sms.producer import Producer
from dreams_sms.queue.keys import Keys

ROOT = Path(__file__).resolve().parent.parent
K = Keys()


def settings_for(url: str, **changes: object) -> Settings:
    return Settings(redis_url=url).with_(**changes)


class Api:
    """A running API and what a test needs around it."""

    def __init__(self, base: str, r: redis.Redis, settings: Settings):
        self.base = base
        self.r = r
        self.settings = settings
        self.keys = ApiKeys(r)
        self.secret = self.new_key("Dreams", "Alerts")

    def new_key(self, *senders: str) -> str:
        return self.keys.create(senders, name="test")[1]

    def call(self, method: str, path: str, secret: str | None = "", **kw: object
             ) -> requests.Response:
        headers = dict(kw.pop("headers", {}) or {})  # type: ignore[call-overload]
        secret = self.secret if secret == "" else secret
        if secret is not None:
            headers["Authorization"] = f"Bearer {secret}"
        return requests.request(method, self.base + path, headers=headers, timeout=30, **kw)


@pytest.fixture
def api_factory(r: redis.Redis, redis_url: str):
    started = []

    def start(**changes: object) -> Api:
        s = settings_for(redis_url, **changes)
        cm = running_api(create_app(s, r))
        base = cm.__enter__()
        started.append(cm)
        return Api(base, r, s)

    yield start
    for cm in reversed(started):
        cm.__exit__(None, None, None)


@pytest.fixture
def api(api_factory) -> Api:
    return api_factory()


def error_of(res: requests.Response, status: int) -> dict:
    assert res.status_code == status, res.text
    body = res.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    return body["error"]


# -- keys -------------------------------------------------------------------------------
def test_keys_are_stored_hashed_verified_listed_and_revoked(r):
    keys = ApiKeys(r)
    key, secret = keys.create(["Dreams", "Promo", "Dreams"], name="shop")
    assert secret.startswith("dsms_") and split(secret) == key.id
    assert key.senders == ("Dreams", "Promo")
    stored = {k: r.type(k) for k in r.scan_iter("*")}
    dump = json.dumps({k: r.hgetall(k) if t == "hash" else sorted(r.smembers(k))
                       for k, t in stored.items()})
    assert secret not in dump and secret.rsplit("_", 1)[1] not in dump  # only the hash
    assert keys.verify(secret) == key
    assert keys.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert keys.verify("dsms_" + key.id) is None and keys.verify("nonsense") is None
    assert [k.id for k in keys.list()] == [key.id]
    assert keys.revoke(key.id) and not keys.revoke(key.id)
    assert keys.verify(secret) is None and keys.list() == []


def test_a_key_needs_a_valid_sender(r):
    from dreams_sms.errors import ValidationError

    with pytest.raises(ValidationError) as info:
        ApiKeys(r).create([])
    assert info.value.field == "sender"
    with pytest.raises(ValidationError):
        ApiKeys(r).create(["far too long a sender name"])


# -- authentication and errors ----------------------------------------------------------
def test_no_key_wrong_key_and_revoked_key_are_refused(api):
    msg = {"to": "0551234567", "text": "hi", "sender": "Dreams"}
    err = error_of(api.call("POST", "/v1/messages", None, json=msg), 401)
    assert err["code"] == "unauthorized"
    wrong = "dsms_0123456789ab_" + "x" * 43
    res = api.call("POST", "/v1/messages", wrong, json=msg)
    assert error_of(res, 401)["code"] == "unauthorized"
    assert res.headers["WWW-Authenticate"] == "Bearer"
    assert wrong not in res.text and "x" * 43 not in res.text
    other = api.new_key("Dreams")
    assert api.call("GET", "/v1/senders", other).status_code == 200
    api.keys.revoke(split(other))
    assert error_of(api.call("GET", "/v1/senders", other), 401)["code"] == "unauthorized"


def test_a_key_is_refused_on_a_sender_it_may_not_use(api):
    res = api.call("POST", "/v1/messages", json={"to": "0551234567", "text": "hi",
                                                  "sender": "Promo"})
    err = error_of(res, 403)
    assert (err["code"], err["field"]) == ("forbidden", "sender")
    assert api.r.xlen(K.stream("Promo")) == 0
    res = api.call("POST", "/v1/campaigns?sender=Promo", data=b"number,text\n0551234567,x\n",
                   headers={"Content-Type": "text/csv"})
    assert error_of(res, 403)["field"] == "sender"
    assert not api.r.exists(K.stream("Promo"))


def test_unknown_routes_and_methods_answer_the_error_shape(api):
    assert error_of(api.call("GET", "/v1/nothing"), 404)["code"] == "not_found"
    assert error_of(api.call("DELETE", "/v1/senders"), 405)["code"] == "method_not_allowed"


@pytest.mark.parametrize(("body", "field"), [
    ({"to": "12345", "text": "hi", "sender": "Dreams"}, "to"),
    ({"to": "0551234567", "text": "", "sender": "Dreams"}, "text"),
    ({"to": "0551234567", "sender": "Dreams"}, "text"),
    ({"to": 551234567, "text": "hi", "sender": "Dreams"}, "to"),
    ({"to": "0551234567", "text": "hi", "sender": "Dreams", "colour": "red"}, "colour"),
    ({"to": "0551234567", "text": "hi", "sender": "Dreams", "priority": "urgent"}, "priority"),
    ({"to": "0551234567", "text": "hi", "sender": "Dreams",
      "send_at": "2030-01-01T10:00:00"}, "send_at"),
    ({"to": "0551234567", "text": "hi", "sender": "Dreams", "expires_in": -5}, "expires_in"),
    ({"to": "0551234567", "text": "x" * 2000, "sender": "Dreams"}, "text"),
    ({"to": "0551234567", "text": "hi", "sender": "Dreams", "options": {"font": "x"}},
     "options"),
])
def test_validation_errors_name_the_field(api, body, field):
    err = error_of(api.call("POST", "/v1/messages", json=body), 422)
    assert err["code"] == "invalid"
    assert err["field"] is not None and err["field"].startswith(field), err
    assert api.r.xlen(K.stream("Dreams")) == 0


def test_a_body_that_is_not_json_is_a_422(api):
    res = api.call("POST", "/v1/messages", data=b"{not json",
                   headers={"Content-Type": "application/json"})
    assert error_of(res, 422)["code"] == "invalid"


# -- messages ---------------------------------------------------------------------------
def test_a_message_is_queued_and_its_status_read(api):
    res = api.call("POST", "/v1/messages", json={
        "to": "+966551234567", "text": "مرحبا", "sender": "Dreams", "priority": "high",
        "expires_in": 300})
    assert res.status_code == 202, res.text
    mid = res.json()["id"]
    assert api.r.xlen(K.stream("Dreams", high=True)) == 1
    [(_, fields)] = api.r.xrange(K.stream("Dreams", high=True))
    assert mid in fields.values() or any(mid in v for v in fields.values())
    got = api.call("GET", f"/v1/messages/{mid}")
    assert got.status_code == 200 and got.json()["state"] == "queued"
    assert got.json()["id"] == mid


def test_a_scheduled_message_is_deferred(api):
    res = api.call("POST", "/v1/messages", json={
        "to": "0551234567", "text": "later", "sender": "Dreams",
        "send_at": time.time() + 3600})
    assert res.status_code == 202, res.text
    assert api.call("GET", f"/v1/messages/{res.json()['id']}").json()["state"] == "deferred"
    assert api.r.zcard(K.delayed) == 1


def test_an_idempotent_retry_queues_once(api):
    msg = {"to": "0551234567", "text": "code 1234", "sender": "Dreams"}
    ids = {api.call("POST", "/v1/messages", json=msg,
                    headers={"Idempotency-Key": "order-77"}).json()["id"] for _ in range(3)}
    assert len(ids) == 1
    assert api.r.xlen(K.stream("Dreams")) == 1
    # another key, same sender: the same message (the key is the client's, per sender)
    again = api.call("POST", "/v1/messages", api.new_key("Dreams"), json=msg,
                     headers={"Idempotency-Key": "order-77"})
    assert again.json()["id"] in ids
    # the same idempotency key for another sender is another message
    other = api.call("POST", "/v1/messages", json={**msg, "sender": "Alerts"},
                     headers={"Idempotency-Key": "order-77"})
    assert other.json()["id"] not in ids
    assert api.r.xlen(K.stream("Alerts")) == 1


def test_a_message_of_another_sender_is_not_found(api):
    mid = api.call("POST", "/v1/messages", json={"to": "0551234567", "text": "hi",
                                                 "sender": "Dreams"}).json()["id"]
    promo = api.new_key("Promo")
    err = error_of(api.call("GET", f"/v1/messages/{mid}", promo), 404)
    assert err["code"] == "not_found"
    # messages queued by the Python API (campaign m<date>) are nobody's over HTTP
    pid = Producer(api.settings, r=api.r).send("0551234567", "x", "Dreams")
    assert api.call("GET", f"/v1/messages/{pid}").status_code == 404
    assert api.call("GET", "/v1/messages/not-an-id").status_code == 404


# -- campaigns --------------------------------------------------------------------------
CSV = ("number,text\n"
       "0551234567,hello\n"
       "12345,too short\n"
       '0551234568,"two\nlines"\n'
       "0551234569,\n"
       "0551234570,مرحبا\n")


def test_a_csv_campaign_queues_the_good_rows_and_names_the_bad_by_line(api):
    res = api.call("POST", "/v1/campaigns?sender=Dreams&campaign=spring_1", data=CSV.encode(),
                   headers={"Content-Type": "text/csv; charset=utf-8"})
    assert res.status_code == 201, res.text
    body = res.json()
    assert (body["id"], body["queued"], body["bad"]) == ("spring_1", 3, 2)
    assert [b["line"] for b in body["bad_rows"]] == [3, 6]
    assert "too short" in body["bad_rows"][0]["reason"]
    assert api.r.xlen(K.stream("Dreams")) == 3
    st = api.call("GET", "/v1/campaigns/spring_1").json()
    assert (st["total"], st["queued"], st["sender"], st["done"]) == (3, 3, "Dreams", False)


def ndjson_rows(n: int, bad_every: int = 0) -> Iterator[bytes]:
    for i in range(n):
        if bad_every and i % bad_every == bad_every - 1:
            yield b'{"to": "0512", "text": "bad"}\n'
        else:
            yield json.dumps({"to": f"05{i:08d}", "text": f"row {i}"}).encode() + b"\n"


def test_an_ndjson_campaign_streams_in_chunked_and_reports_bad_lines(api):
    res = api.call("POST", "/v1/campaigns?sender=Alerts", data=ndjson_rows(2500, 500),
                   headers={"Content-Type": "application/x-ndjson"})
    assert res.status_code == 201, res.text
    body = res.json()
    assert (body["queued"], body["bad"]) == (2495, 5)
    assert [b["line"] for b in body["bad_rows"]] == [500, 1000, 1500, 2000, 2500]
    assert api.r.xlen(K.stream("Alerts")) == 2495


def test_a_json_array_campaign(api):
    rows = [{"to": "0551234567", "text": "a"}, {"number": "0551234568", "message": "b"},
            {"to": "0551234569"}, {"to": "0551234570", "text": "d", "key": "row-4"}]
    res = api.call("POST", "/v1/campaigns?sender=Dreams",
                   data=json.dumps(rows, indent=1).encode(),
                   headers={"Content-Type": "application/json"})
    assert res.status_code == 201, res.text
    body = res.json()
    assert (body["queued"], body["bad"]) == (3, 1)
    assert body["bad_rows"][0]["line"] == 10 and "text" in body["bad_rows"][0]["reason"]


def test_rows_are_queued_while_the_body_is_still_arriving(api):
    """Streamed, not buffered: the first rows are in Redis before the last are sent."""
    seen = threading.Event()

    def body() -> Iterator[bytes]:
        yield from ndjson_rows(3000)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not api.r.xlen(K.stream("Dreams")):
            time.sleep(0.02)
        if api.r.xlen(K.stream("Dreams")):
            seen.set()
        yield from ndjson_rows(100)

    res = api.call("POST", "/v1/campaigns?sender=Dreams", data=body(),
                   headers={"Content-Type": "application/x-ndjson"})
    assert res.status_code == 201, res.text
    assert seen.is_set(), "nothing was queued before the body ended"
    assert res.json()["queued"] == 3100


def test_a_bad_header_or_media_type_queues_nothing(api):
    res = api.call("POST", "/v1/campaigns?sender=Dreams&campaign=c_hdr",
                   data=b"phone;colour\n0551234567;red\n", headers={"Content-Type": "text/csv"})
    err = error_of(res, 422)
    assert err["field"] == "header"
    assert not api.r.exists(K.campaign("c_hdr")) and not api.r.exists(K.stream("Dreams"))
    res = api.call("POST", "/v1/campaigns?sender=Dreams", data=b"x",
                   headers={"Content-Type": "application/xml"})
    assert error_of(res, 415)["code"] == "unsupported_media_type"
    res = api.call("POST", "/v1/campaigns?sender=Dreams", data=b'{"to": 1}',
                   headers={"Content-Type": "application/json"})
    assert error_of(res, 422)["field"] == "header"


def test_campaign_ids_are_not_shared_across_senders(api):
    ok = api.call("POST", "/v1/campaigns?sender=Dreams&campaign=shared",
                  data=b"to,text\n0551234567,a\n", headers={"Content-Type": "text/csv"})
    assert ok.status_code == 201
    res = api.call("POST", "/v1/campaigns?sender=Alerts&campaign=shared",
                   data=b"to,text\n0551234567,a\n", headers={"Content-Type": "text/csv"})
    assert error_of(res, 409)["field"] == "campaign"
    res = api.call("POST", "/v1/campaigns?sender=Alerts&campaign=api.20260101.abc",
                   data=b"to,text\n0551234567,a\n", headers={"Content-Type": "text/csv"})
    assert error_of(res, 422)["field"] == "campaign"
    assert api.r.xlen(K.stream("Alerts")) == 0


def test_cancel_and_campaign_scope(api):
    api.call("POST", "/v1/campaigns?sender=Dreams&campaign=to_cancel",
             data=b"to,text\n0551234567,a\n0551234568,b\n", headers={"Content-Type": "text/csv"})
    promo = api.new_key("Promo")
    assert error_of(api.call("GET", "/v1/campaigns/to_cancel", promo), 404)["field"] == \
        "campaign_id"
    assert api.call("POST", "/v1/campaigns/to_cancel/cancel", promo).status_code == 404
    assert api.call("GET", "/v1/campaigns/nope").status_code == 404
    res = api.call("POST", "/v1/campaigns/to_cancel/cancel")
    assert res.status_code == 200, res.text
    assert api.r.hget(K.cancelled, "to_cancel") == "2"


# -- senders ----------------------------------------------------------------------------
def test_senders_show_queue_limits_and_pauses(api):
    from dreams_sms.queue.control import Control
    from dreams_sms.queue.quota import DailyQuota

    for _ in range(2):
        api.call("POST", "/v1/messages", json={"to": "0551234567", "text": "x",
                                               "sender": "Dreams"})
    api.call("POST", "/v1/messages", json={"to": "0551234567", "text": "x", "sender": "Dreams",
                                           "priority": "high"})
    DailyQuota(api.r, prefix="dreams", tz=api.settings.tz).set_limit("Alerts", 0)
    Control(api.r, K).pause(sender="Alerts", reason="operator")
    got = {s["name"]: s for s in api.call("GET", "/v1/senders").json()["senders"]}
    assert set(got) == {"Dreams", "Alerts"}
    assert (got["Dreams"]["queued"], got["Dreams"]["high"], got["Dreams"]["paused"]) == \
        (3, 1, False)
    assert got["Dreams"]["daily_limit"] is None
    assert got["Alerts"]["daily_limit"] == 0 and got["Alerts"]["closed_today"] is True
    assert (got["Alerts"]["paused"], got["Alerts"]["paused_why"]) == (True, "operator")


# -- limits -----------------------------------------------------------------------------
def test_request_bodies_over_the_limits_are_refused(api_factory):
    api = api_factory(api_max_request=2000, api_max_body=5000)
    big = {"to": "0551234567", "text": "x" * 3000, "sender": "Dreams"}
    err = error_of(api.call("POST", "/v1/messages", json=big), 413)
    assert err["code"] == "too_large"
    res = api.call("POST", "/v1/campaigns?sender=Dreams", data=b"to,text\n" + b"0551234567,a\n" *
                   1000, headers={"Content-Type": "text/csv"})
    assert error_of(res, 413)["code"] == "too_large"
    assert api.r.xlen(K.stream("Dreams")) == 0  # refused on Content-Length, before reading
    # no Content-Length (chunked): counted as it streams, stopped at the limit
    res = api.call("POST", "/v1/campaigns?sender=Dreams", data=iter(
        [b"to,text\n"] + [b"0551234567,a\n"] * 1000), headers={"Content-Type": "text/csv"})
    assert error_of(res, 413)["code"] == "too_large"


def slow_csv(n: int, pause_every: int = 1000) -> Iterator[bytes]:
    """CSV rows with distinct numbers, paced so the server reads them in several pieces."""
    yield b"to,text\n"
    for start in range(0, n, pause_every):
        yield b"".join(f"05{i:08d},row {i}\n".encode() for i in range(start, start + pause_every))
        time.sleep(0.05)


def test_an_upload_cut_at_the_limit_can_be_resumed_without_duplicates(api_factory):
    small = api_factory(api_max_body=100_000)
    res = small.call("POST", "/v1/campaigns?sender=Dreams&campaign=chunky", data=slow_csv(10_000),
                     headers={"Content-Type": "text/csv"})
    err = error_of(res, 413)
    assert "chunky" in err["message"] and "resume=true" in err["message"], err
    committed = small.r.xlen(K.stream("Dreams"))
    assert 1000 <= committed < 10_000
    big = api_factory()  # another replica, with the default limit
    res = big.call("POST", "/v1/campaigns?sender=Dreams&campaign=chunky&resume=true",
                   small.secret, data=slow_csv(10_000), headers={"Content-Type": "text/csv"})
    assert res.status_code == 201, res.text
    assert res.json()["queued"] == 10_000 - committed
    numbers = [f["t"] for _, f in big.r.xrange(K.stream("Dreams"))]
    assert len(numbers) == len(set(numbers)) == 10_000


def test_the_rate_limit_holds_across_replicas(api_factory):
    one = api_factory(api_rate=0.5, api_burst=3)
    two = api_factory(api_rate=0.5, api_burst=3)
    two.secret = one.secret
    codes = [a.call("GET", "/v1/senders").status_code for a in (one, two, one, two, one)]
    assert codes.count(200) in (3, 4) and codes[-1] == 429, codes
    res = one.call("GET", "/v1/senders")
    assert error_of(res, 429)["code"] == "rate_limited"
    assert int(res.headers["Retry-After"]) >= 1
    # another key has its own budget
    assert one.call("GET", "/v1/senders", one.new_key("Dreams")).status_code == 200


def test_secrets_never_reach_logs_or_error_bodies(api_factory, caplog):
    caplog.set_level(logging.DEBUG)
    api = api_factory()
    bodies = []
    for secret in (api.secret, api.secret + "x", "dsms_" + "0" * 12 + "_" + "y" * 43):
        for method, path, kw in (("GET", "/v1/senders", {}),
                                 ("POST", "/v1/messages", {"json": {"sender": "Promo"}}),
                                 ("GET", "/v1/messages/zzz-1", {})):
            bodies.append(api.call(method, path, secret, **kw).text)
    text = caplog.text + "".join(bodies)
    for secret in (api.secret, "y" * 43):
        assert secret not in text
    assert api.secret.rsplit("_", 1)[1] not in text


# -- the OpenAPI document and the dashboard's place ---------------------------------------
def test_the_committed_openapi_document_is_what_the_app_serves(api):
    committed = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    served = requests.get(api.base + "/openapi.json", timeout=10).json()
    assert json.loads(committed) == served, "run: dreams-sms openapi --output docs/openapi.json"
    assert committed == openapi_text()
    assert {"/v1/messages", "/v1/campaigns", "/v1/messages/{message_id}",
            "/v1/campaigns/{campaign_id}", "/v1/campaigns/{campaign_id}/cancel",
            "/v1/senders"} <= set(served["paths"])
    assert served["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"


def test_the_dashboard_is_served_behind_the_api_keys(r, redis_url):
    app = create_app(settings_for(redis_url), r)
    _, secret = ApiKeys(r).create(["Dreams"])
    with running_api(app) as base:
        refused = requests.get(f"{base}/dashboard", timeout=10)
        assert refused.status_code == 401 and "Basic" in refused.headers["WWW-Authenticate"]
        assert requests.get(f"{base}/dashboard", auth=("ops", "dsms_x_y"),
                            timeout=10).status_code == 401
        page = requests.get(f"{base}/dashboard", auth=("ops", secret), timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert secret not in page.text
        data = requests.get(f"{base}/dashboard/data.json", auth=("ops", secret), timeout=10)
        assert data.status_code == 200 and "senders" in data.json()
    assert not any(p.startswith("/dashboard") for p in app.openapi()["paths"])


def test_healthz_needs_no_key(api):
    res = requests.get(api.base + "/healthz", timeout=10)
    assert res.status_code == 200 and res.json() == {"status": "ok"}
