"""End to end over HTTP: `dreams-sms serve` as its own process, real workers, the sandbox.

Campaigns posted as CSV and as NDJSON, single messages retried with one
Idempotency-Key, keys made with the CLI: the sandbox's record of what it
accepted must hold every good row exactly once, and nothing for a sender the
key may not use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from e2e_helpers import check_exactly_once, make_stack, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stack():
    s = make_stack(workers=1, concurrency=2, api=True)
    s.start()
    yield s
    s.stop()


def cli(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dreams_sms", *args], env=stack.env(),
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def secret(stack) -> str:
    """A key for Dreams only, made the way an operator makes one."""
    res = cli(stack, "keys", "create", "--sender", "Dreams", "--name", "e2e")
    assert res.returncode == 0, res.stderr
    assert "shown once" in res.stderr
    return res.stdout.strip()


def call(stack, secret: str, method: str, path: str, **kw) -> requests.Response:
    headers = {"Authorization": f"Bearer {secret}", **kw.pop("headers", {})}
    return requests.request(method, stack.api_url + path, headers=headers, timeout=120, **kw)


def done(stack, secret: str, cid: str) -> bool:
    return call(stack, secret, "GET", f"/v1/campaigns/{cid}").json()["done"]


def rows(n: int) -> list[tuple[str, str, str]]:
    """(as written, normalised, text): Arabic and Latin, several spellings."""
    out = []
    for i in range(n):
        digits = f"{i:08d}"
        written = (f"05{digits}", f"+9665{digits}", f"9665{digits}")[i % 3]
        out.append((written, f"9665{digits}", f"api {i}" if i % 2 else f"رسالة {i}"))
    return out


def test_a_csv_campaign_over_http_is_delivered_exactly_once(stack, admin, p, secret):
    good = rows(1200)
    lines = ["number,text"] + [f"{w},{t}" for w, _, t in good[:600]]
    lines += ["12345,bad number", "0551230000,"]  # lines 602 and 603
    lines += [f"{w},{t}" for w, _, t in good[600:]]
    res = call(stack, secret, "POST", "/v1/campaigns?sender=Dreams&campaign=e2e_csv",
               data="\n".join(lines).encode(), headers={"Content-Type": "text/csv"})
    assert res.status_code == 201, res.text
    body = res.json()
    assert (body["queued"], body["bad"]) == (1200, 2)
    assert [b["line"] for b in body["bad_rows"]] == [602, 603]
    wait_for(lambda: done(stack, secret, "e2e_csv"), 120, "the CSV campaign", stack)
    st = call(stack, secret, "GET", "/v1/campaigns/e2e_csv").json()
    assert (st["total"], st["sent"], st["failed"]) == (1200, 1200, 0)
    outcome = check_exactly_once(admin, Counter(("Dreams", n, t) for _, n, t in good))
    assert (outcome["lost"], outcome["duplicates"], outcome["accepted_once"]) == (0, 0, 1200)


def test_an_ndjson_campaign_streamed_over_http_is_delivered_exactly_once(stack, admin, p,
                                                                          secret):
    good = rows(3000)

    def body():
        for i, (w, _, t) in enumerate(good):
            if i == 1500:
                yield b'{"to": "0551234567", "text": 5}\n'  # line 1501
            yield json.dumps({"to": w, "text": t}, ensure_ascii=False).encode() + b"\n"

    res = call(stack, secret, "POST", "/v1/campaigns?sender=Dreams", data=body(),
               headers={"Content-Type": "application/x-ndjson"})
    assert res.status_code == 201, res.text
    out = res.json()
    assert (out["queued"], out["bad"], out["bad_rows"][0]["line"]) == (3000, 1, 1501)
    wait_for(lambda: done(stack, secret, out["id"]), 180, "the NDJSON campaign", stack)
    outcome = check_exactly_once(admin, Counter(("Dreams", n, t) for _, n, t in good))
    assert (outcome["lost"], outcome["duplicates"]) == (0, 0)


def test_an_idempotent_retry_sends_once_and_other_senders_are_refused(stack, admin, p, secret):
    msg = {"to": "0551112222", "text": "your code is 9081", "sender": "Dreams",
           "priority": "high"}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: call(
            stack, secret, "POST", "/v1/messages", json=msg,
            headers={"Idempotency-Key": "otp-9081"}), range(8)))
    assert {a.status_code for a in answers} == {202}
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    mid = ids.pop()
    wait_for(lambda: call(stack, secret, "GET", f"/v1/messages/{mid}").json()["state"] ==
             "sent", 60, "the message", stack)
    refused = call(stack, secret, "POST", "/v1/messages", json={**msg, "sender": "Promo"})
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "sender"
    # once more after it was sent: still the same id, nothing new
    again = call(stack, secret, "POST", "/v1/messages", json=msg,
                 headers={"Idempotency-Key": "otp-9081"})
    assert again.json()["id"] == mid
    wait_for(lambda: p.campaign_status(mid.rpartition("-")[0]).done, 30, "settled", stack)
    sent = [m for m in admin.messages() if m["text"] == msg["text"]]
    assert len(sent) == 1 and sent[0]["sender"] == "Dreams"
    assert not [m for m in admin.messages() if m["sender"] == "Promo"]


def test_keys_from_the_cli_list_and_revoke_and_never_leak(stack, secret):
    listed = cli(stack, "keys", "list")
    assert listed.returncode == 0 and "e2e" in listed.stdout and "Dreams" in listed.stdout
    extra = cli(stack, "keys", "create", "--sender", "Alerts").stdout.strip()
    senders = call(stack, extra, "GET", "/v1/senders").json()["senders"]
    assert [s["name"] for s in senders] == ["Alerts"]
    key_id = extra.split("_")[1]
    assert cli(stack, "keys", "revoke", key_id).returncode == 0
    assert call(stack, extra, "GET", "/v1/senders").status_code == 401
    again = cli(stack, "keys", "revoke", key_id)
    assert again.returncode == 2 and "no API key" in again.stderr
    logs = stack.logs() + listed.stdout + listed.stderr
    assert "GET /v1/senders" in (stack.dir / "api.log").read_text()  # the access log ran
    for s in (secret, extra):
        assert s not in logs and s.rsplit("_", 1)[1] not in logs
