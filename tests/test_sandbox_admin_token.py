"""The sandbox's admin API behind an optional token, and what it never shows or logs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from dreams_sms.sandbox.server import ADMIN_TOKEN_HEADER
from dreams_sms.sandbox.testing import SandboxAdmin, SandboxAdminError, running_sandbox

TOKEN = "adm-7f3c9e21b4"


def test_with_a_token_every_admin_route_needs_it():
    with running_sandbox(admin_token=TOKEN) as srv:
        for method, route in [("GET", "state"), ("GET", "stats"), ("GET", "messages"),
                              ("GET", "accounts/demo"), ("POST", "reset"), ("POST", "balance"),
                              ("POST", "lookup"), ("POST", "nothing-here")]:
            for headers in ({}, {ADMIN_TOKEN_HEADER: "wrong"}, {ADMIN_TOKEN_HEADER: ""}):
                r = requests.request(method, f"{srv.url}/_sandbox/{route}", json={},
                                     headers=headers, timeout=5)
                assert r.status_code == 401, (method, route, headers)
                assert "demo-secret" not in r.text
        with pytest.raises(SandboxAdminError) as info:
            SandboxAdmin(srv.url).state()
        assert info.value.status == 401
        admin = SandboxAdmin(srv.url, token=TOKEN)
        assert admin.set_balance(5) == 5
        assert admin.account("demo")["secret_key"] == "demo-secret"
        assert TOKEN not in repr(admin)
        # the provider's own API does not care about the admin token
        r = requests.post(srv.api_url + "/chk_balance",
                          data={"user": "demo", "secret_key": "demo-secret"}, timeout=5)
        assert r.text == "5"


def test_without_a_token_the_admin_api_is_open_as_before():
    with running_sandbox() as srv:
        assert SandboxAdmin(srv.url).stats()["accepted"] == 0


def test_state_and_stats_never_show_keys_or_client_secrets():
    with running_sandbox() as srv:
        admin = SandboxAdmin(srv.url)
        admin.oauth_client("c-9", "cs-secret-9931", user="demo")
        shown = requests.get(srv.url + "/_sandbox/state", timeout=5).text
        shown += requests.get(srv.url + "/_sandbox/stats", timeout=5).text
        assert "demo-secret" not in shown and "cs-secret-9931" not in shown
        assert "demo-client-secret" not in shown
        assert {"client_id": "c-9", "user": "demo"} in admin.state()["oauth_clients"]


def test_an_added_oauth_client_gets_tokens():
    with running_sandbox() as srv:
        admin = SandboxAdmin(srv.url)
        assert admin.oauth_client("c-1", "cs-1") == {"client_id": "c-1", "user": "demo"}
        r = requests.post(srv.oauth_url + "/generate", timeout=5, data={
            "grant_type": "client_credentials", "client_id": "c-1", "client_secret": "cs-1"})
        assert r.status_code == 200 and r.json()["access_token"]
        with pytest.raises(SandboxAdminError) as info:
            admin.oauth_client("c-2", "cs-2", user="ghost")
        assert info.value.status == 404
        with pytest.raises(SandboxAdminError) as info:
            admin.oauth_client("", "cs-2")
        assert info.value.status == 400


def _serve(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "dreams_sms.sandbox", "--admin",
                             "--port", str(port), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(url + "/", timeout=0.5)
            return proc, url
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the sandbox did not start")


def test_the_command_reads_the_token_from_the_environment_and_logs_no_secret():
    env = {**os.environ, "DREAMS_SANDBOX_ADMIN_TOKEN": TOKEN}
    proc, url = _serve([], env)
    try:
        assert requests.get(url + "/_sandbox/state", timeout=5).status_code == 401
        admin = SandboxAdmin(url, token=TOKEN)
        admin.account_upsert(user="demo", secret_key="sk-logged-never-1")
        admin.oauth_client("c-3", "cs-logged-never-2")
        requests.post(url + "/index.php/api/sendsms", timeout=5, data={
            "user": "demo", "secret_key": "sk-logged-never-1", "to": "966500000001",
            "message": "hi", "sender": "Dreams"})
        requests.post(url + "/token/generate", timeout=5, data={
            "grant_type": "client_credentials", "client_id": "c-3",
            "client_secret": "cs-logged-never-2"})
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    logs = out + err
    assert "token required" in out
    for secret in ("sk-logged-never-1", "cs-logged-never-2", TOKEN):
        assert secret not in logs


def test_an_open_admin_api_beyond_loopback_is_warned_about():
    env = {k: v for k, v in os.environ.items() if k != "DREAMS_SANDBOX_ADMIN_TOKEN"}
    proc, _ = _serve(["--host", "0.0.0.0"], env)
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert "warning: the admin API on 0.0.0.0 has no token" in err
