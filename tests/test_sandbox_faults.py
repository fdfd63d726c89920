"""Each fault kind, seen from a requests client, and what it did to the record."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from dreams_sms.sandbox import SandboxServer
from dreams_sms.sandbox.testing import SandboxAdmin, SandboxAdminError, running_sandbox

AUTH = {"user": "demo", "secret_key": "demo-secret"}
CLIENT = {"client_id": "demo-client", "client_secret": "demo-client-secret"}
SEND = {**AUTH, "to": "966512345678,966512345679", "message": "hi", "sender": "Dreams"}
MULTI = {**AUTH, "sender": "Dreams", "to": json.dumps({"966512345670": "m"})}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with running_sandbox(seed=42) as srv:
        yield srv


@pytest.fixture
def admin(server: SandboxServer) -> Iterator[SandboxAdmin]:
    client = SandboxAdmin(server.url)
    client.reset()
    yield client
    client.reset()
    client.session.close()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def send(server: SandboxServer, http: requests.Session, timeout: float = 5, **params):
    return http.post(f"{server.api_url}/sendsms", data={**SEND, **params}, timeout=timeout)


def test_error_rate_answers_the_configured_codes(server, http, admin) -> None:
    admin.faults(error_rate=1.0, error_codes=[-114])
    assert send(server, http).text == "-114"
    r = http.post(f"{server.api_url}/sendsms_multi", data=MULTI, timeout=5)
    assert r.text == "-114"
    admin.faults(error_codes=[-118])
    assert send(server, http).text == "-118"
    assert admin.stats()["accepted"] == 0
    assert admin.state()["accounts"]["demo"]["balance"] == 1_000_000
    assert admin.stats()["answers"]["sendsms"] == {"-114": 1, "-118": 1}


def test_default_error_codes_are_114_and_118(server, http, admin) -> None:
    assert admin.faults(error_rate=1.0)["error_codes"] == [-114, -118]
    seen = Counter(send(server, http).text for _ in range(40))
    assert set(seen) == {"-114", "-118"}


def test_error_rate_is_a_share_and_the_record_agrees(server, http, admin) -> None:
    admin.faults(error_rate=0.5)
    answers = Counter(send(server, http, to="966512345678").text for _ in range(200))
    assert 60 <= answers["Result:Success"] <= 140
    assert answers["Result:Success"] + answers["-114"] + answers["-118"] == 200
    assert admin.stats()["accepted"] == answers["Result:Success"]


def test_error_burst_counts_down(server, http, admin) -> None:
    admin.faults(error_burst=2, error_codes=[-118])
    assert [send(server, http).text for _ in range(3)] == ["-118", "-118", "Result:Success"]
    assert admin.state()["faults"]["error_burst"] == 0
    assert admin.stats()["accepted"] == 2


def test_latency_applies_to_every_api_call_but_not_oauth_or_admin(server, http, admin) -> None:
    admin.faults(latency_ms=300)
    for endpoint in ("chk_balance", "sendsms"):
        start = time.monotonic()
        http.post(f"{server.api_url}/{endpoint}", data=SEND, timeout=5)
        assert time.monotonic() - start >= 0.29, endpoint
    start = time.monotonic()
    r = http.post(
        f"{server.oauth_url}/generate",
        data={"grant_type": "client_credentials", **CLIENT},
        timeout=5,
    )
    admin.state()
    assert r.status_code == 200
    assert time.monotonic() - start < 0.25


def test_hang_holds_then_closes_without_accepting(server, http, admin) -> None:
    admin.faults(hang_rate=1.0, hang_s=1.5)
    start = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        send(server, http, timeout=0.5)
    with pytest.raises(requests.exceptions.ConnectionError) as err:
        send(server, http, timeout=5)
    assert not isinstance(err.value, requests.exceptions.ReadTimeout)
    assert time.monotonic() - start >= 1.9  # 0.5 s timeout + 1.5 s hang
    time.sleep(0.2)
    assert admin.stats()["accepted"] == 0
    assert admin.stats()["answers"]["sendsms"] == {"hang": 2}


def test_http5xx_answers_an_html_error_page(server, http, admin) -> None:
    admin.faults(http5xx_rate=1.0)
    statuses = set()
    for _ in range(30):
        r = send(server, http)
        statuses.add(r.status_code)
        assert r.headers["Content-Type"] == "text/html"
        assert r.text.startswith("<html>")
    assert statuses == {500, 502, 503}
    assert admin.stats()["accepted"] == 0
    assert sum(admin.stats()["answers"]["sendsms"].values()) == 30


def test_garbled_is_200_with_an_unreadable_body(server, http, admin) -> None:
    admin.faults(garbled_rate=1.0)
    bodies = set()
    for _ in range(30):
        r = send(server, http)
        assert r.status_code == 200
        body = r.content
        assert b"Success" not in body
        assert not body.strip().lstrip(b"-").isdigit()
        bodies.add(body[:6])
    assert len(bodies) >= 3  # html, random bytes, empty
    assert admin.stats()["accepted"] == 0


def test_drop_after_accept_records_but_never_answers(server, http, admin) -> None:
    admin.faults(drop_after_accept_rate=1.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        send(server, http)
    with pytest.raises(requests.exceptions.ConnectionError):
        http.post(f"{server.api_url}/sendsms_multi", data=MULTI, timeout=5)
    records = admin.messages()
    assert [m["to"] for m in records] == ["966512345678", "966512345679", "966512345670"]
    assert admin.state()["accounts"]["demo"]["balance"] == 1_000_000 - 3
    assert admin.lookup("Dreams", 0, [{"to": "966512345670", "text": "m"}]) == [1]
    answers = admin.stats()["answers"]
    assert answers["sendsms"] == {"drop_after_accept": 1}


def test_faults_only_hit_their_endpoints(server, http, admin) -> None:
    admin.faults(error_rate=1.0)
    assert http.post(f"{server.api_url}/chk_balance", data=AUTH, timeout=5).text == "1000000"
    admin.faults(endpoints=["CHK_balance"])
    assert admin.state()["faults"]["endpoints"] == ["chk_balance"]
    assert http.post(f"{server.api_url}/chk_balance", data=AUTH, timeout=5).text in {
        "-114",
        "-118",
    }
    assert send(server, http).text == "Result:Success"


def test_faults_never_touch_oauth_or_admin(server, http, admin) -> None:
    admin.faults(
        error_rate=0.5, http5xx_rate=0.5, endpoints=["sendsms", "sendsms_multi", "chk_user"]
    )
    for _ in range(10):
        r = http.post(
            f"{server.oauth_url}/generate",
            data={"grant_type": "client_credentials", **CLIENT},
            timeout=5,
        )
        assert r.status_code == 200
        assert admin.state()["faults"]["http5xx_rate"] == 0.5


def test_fault_validation(admin: SandboxAdmin) -> None:
    for bad in [
        {"error_rate": 1.5},
        {"hang_rate": 0.6, "error_rate": 0.6},
        {"colour": 1},
        {"endpoints": ["nope"]},
        {"error_codes": []},
        {"latency_ms": -1},
    ]:
        with pytest.raises(SandboxAdminError) as err:
            admin.faults(**bad)
        assert err.value.status == 400, bad
    admin.faults(error_rate=0.2, latency_ms=5)
    assert admin.faults(reset=True, hang_rate=0.1) | {"hang_rate": 0.1} == admin.state()["faults"]
    faults = admin.state()["faults"]
    assert (faults["error_rate"], faults["latency_ms"], faults["hang_rate"]) == (0, 0, 0.1)


def test_faults_given_at_start() -> None:
    with running_sandbox(faults={"error_burst": 1, "error_codes": [-114]}) as srv:
        r1 = requests.post(f"{srv.api_url}/sendsms", data=SEND, timeout=5)
        r2 = requests.post(f"{srv.api_url}/sendsms", data=SEND, timeout=5)
        assert (r1.text, r2.text) == ("-114", "Result:Success")


def test_seeded_faults_repeat() -> None:
    def run() -> list[str]:
        faults = {"error_rate": 0.3, "garbled_rate": 0.3}
        with running_sandbox(seed=7, faults=faults) as srv, requests.Session() as http:
            return [send(srv, http).text for _ in range(30)]

    assert run() == run()


def test_stop_ends_a_hanging_request_at_once() -> None:
    outcome: list[BaseException | requests.Response] = []
    with running_sandbox(faults={"hang_rate": 1.0, "hang_s": 30}) as srv:

        def call() -> None:
            try:
                outcome.append(requests.post(f"{srv.api_url}/sendsms", data=SEND, timeout=20))
            except requests.RequestException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(0.3)
        start = time.monotonic()
    worker.join(5)
    assert time.monotonic() - start < 3
    assert len(outcome) == 1
    assert isinstance(outcome[0], requests.exceptions.ConnectionError)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_command_line_serves_and_stops_on_ctrl_c() -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dreams_sms.sandbox",
            "--port",
            str(port),
            "--admin",
            "--error-burst",
            "1",
            "--error-codes",
            "-118",
            "--success-body",
            "success",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
        url = f"http://127.0.0.1:{port}/index.php/api/sendsms"
        assert requests.post(url, data=SEND, timeout=5).text == "-118"
        assert requests.post(url, data=SEND, timeout=5).text == "Success"
        stats = SandboxAdmin(f"http://127.0.0.1:{port}").stats()
        assert stats["accepted"] == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_command_line_refuses_bad_faults() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dreams_sms.sandbox", "--error-rate", "2"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "error_rate" in result.stderr


def test_refuse_rate_is_a_429_with_retry_after_and_accepts_nothing(server, http, admin) -> None:
    admin.faults(refuse_rate=1.0, refuse_retry_after=7)
    r = send(server, http)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert admin.stats()["accepted"] == 0
    assert admin.stats()["answers"]["sendsms"] == {"http_429": 1}


def test_partial_rate_accepts_all_but_lists_all_but_the_last(server, http, admin) -> None:
    admin.faults(partial_rate=1.0)
    r = send(server, http)
    lines = r.text.splitlines()
    assert r.status_code == 200 and len(lines) == 1 and lines[0].endswith(":966512345678")
    assert admin.stats()["accepted"] == 2
    assert admin.stats()["answers"]["sendsms"] == {"partial": 1}


def test_refuse_and_partial_as_the_client_sees_them(server, admin) -> None:
    from dreams_sms.config import Secret, Settings
    from dreams_sms.errors import HttpRefused
    from dreams_sms.provider.client import DreamsClient

    settings = Settings(user="demo", secret_key=Secret("demo-secret"), base_url=server.api_url)
    items = [("966512345670", "a"), ("966512345671", "b"), ("966512345672", "c")]
    with DreamsClient(settings) as client:
        admin.faults(refuse_rate=1.0, refuse_retry_after=3)
        with pytest.raises(HttpRefused) as info:
            client.send_multi("Dreams", items)
        assert info.value.retryable and info.value.retry_after == 3.0
        admin.faults(reset=True, partial_rate=1.0)
        result = client.send_multi("Dreams", items)
    assert result.confirmed == (True, True, False) and result.unconfirmed == (2,)
    assert len(admin.messages()) == 3  # the unconfirmed one did land: hold it, never resend


def test_refuse_retry_after_is_checked(admin) -> None:
    with pytest.raises(SandboxAdminError):
        admin.faults(refuse_retry_after=-1)
