"""The dashboard's routes without a browser: the key is asked for and never echoed,
the page escapes what Redis holds, the JSON matches the readers, only the two
assets are served, and a Redis that went away is a 503, not a traceback."""

from __future__ import annotations

import base64

import pytest
import redis
from fakes import FakeApp, numbers
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dreams_sms.api.dashboard import make_router
from dreams_sms.config import Settings
from dreams_sms.producer import Producer

KEY = "test-key"


@pytest.fixture
def settings(redis_url):
    return Settings(redis_url=redis_url, test_clock=True)


@pytest.fixture
def producer(settings):
    return Producer(settings, app=FakeApp())


def client_for(r: redis.Redis, settings: Settings) -> TestClient:
    app = FastAPI()
    app.include_router(make_router(lambda secret: secret == KEY, r, settings))
    return TestClient(app)


@pytest.fixture
def client(producer, settings):
    return client_for(producer.r, settings)


def basic(password: str, user: str = "ops") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/data.json",
                                  "/dashboard/static/dashboard.js"])
def test_every_route_needs_the_key_and_never_echoes_it(client, path):
    for headers in ({}, basic("wrong-key-s3cret"), basic(""), {"Authorization": "Bearer x"}):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 401, (path, headers)
        assert answer.headers["www-authenticate"].startswith("Basic ")
        assert "s3cret" not in answer.text and "s3cret" not in str(answer.headers)
    assert client.get(path, headers=basic(KEY, user="anyone")).status_code == 200


def test_the_page_escapes_what_redis_holds(client, producer):
    producer.send_bulk("Tom&Jerry", [(n, "x") for n in numbers(3)], campaign="c1")
    producer.control.pause(reason="<script>alert(1)</script>", code="<b>")
    answer = client.get("/dashboard", headers=basic(KEY))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-store"
    html = answer.text
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'data-sender="Tom&amp;Jerry"' in html and ">Tom&amp;Jerry<" in html
    assert '<progress data-campaign="c1" value="0" max="3">0%</progress>' in html
    assert 'src="/dashboard/static/dashboard.js"' in html
    assert 'data-source="/dashboard/data.json"' in html
    assert "<script>" not in html.replace('<script src="/dashboard/static/dashboard.js" '
                                          'defer></script>', "")


def test_the_json_is_the_overview(client, producer):
    producer.send_bulk("Promo", [(n, "x") for n in numbers(7)], campaign="ramadan")
    data = client.get("/dashboard/data.json", headers=basic(KEY)).json()
    assert [(c["id"], c["total"], c["counts"]["queued"]) for c in data["campaigns"]] == \
        [("ramadan", 7, 7)]
    assert [(s["name"], s["normal"]) for s in data["senders"]] == [("Promo", 7)]
    assert data["held"]["count"] == 0


def test_only_the_two_assets_are_served(client):
    js = client.get("/dashboard/static/dashboard.js", headers=basic(KEY))
    assert js.status_code == 200 and "textContent" in js.text
    assert js.headers["content-type"].startswith("text/javascript")
    css = client.get("/dashboard/static/dashboard.css", headers=basic(KEY))
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for name in ("page.py", "..%2Fdashboard.py", "../templates/dashboard.html"):
        assert client.get(f"/dashboard/static/{name}", headers=basic(KEY)).status_code == 404


def test_a_client_that_does_not_decode_is_served_too(producer, settings, redis_url):
    producer.send_bulk("Promo", [(n, "x") for n in numbers(2)], campaign="raw")
    raw = redis.Redis.from_url(redis_url)  # bytes replies
    data = client_for(raw, settings).get("/dashboard/data.json", headers=basic(KEY)).json()
    assert data["campaigns"][0]["id"] == "raw"


def test_redis_away_is_a_503(settings):
    gone = redis.Redis(host="127.0.0.1", port=1, decode_responses=True,
                       socket_connect_timeout=0.5)
    answer = client_for(gone, settings).get("/dashboard/data.json", headers=basic(KEY))
    assert answer.status_code == 503 and "Redis is unavailable" in answer.json()["detail"]
