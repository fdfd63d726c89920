"""The README's main command, driven the way a new user runs it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def _listening(url: str) -> bool:
    host, port = url.split("//")[1].split(":")
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port.split("/")[0]))) == 0


def test_demo_runs_a_campaign_to_a_correct_summary_and_leaves_nothing_behind():
    out = subprocess.run(
        [sys.executable, "-m", "dreams_sms", "demo", "--size", "3000", "--workers", "1"],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    text = out.stdout
    assert out.returncode == 0, text + out.stderr
    assert "rows refused" in text and "invalid number" in text
    header = re.search(r"\| sender +\|(.*)\|\n", text)
    assert header, text
    assert [c.strip() for c in header.group(1).split("|")] == [
        "total", "queued", "sent", "deferred", "failed", "expired", "unknown", "sandbox accepted"]
    total = re.search(r"\| all +\|" + r"\s+(\d+) \|" * 8, text)
    assert total, text
    total_, queued, sent, deferred, failed, expired, unknown, accepted = map(int, total.groups())
    assert queued == 0  # still waiting: nothing, the run is over
    assert total_ == sent + deferred + failed + expired + unknown
    assert sent == accepted > 0
    assert deferred > 0  # the limited sender waits for tomorrow, and the screen says why
    assert re.search(rf"deferred: {deferred} Promo messages wait for tomorrow: Promo's daily "
                     r"limit of \d+ is used up", text), text
    assert "sandbox duplicates: 0" in text
    # one rate: the bar's last reading is the summary's average
    bars = [ln for ln in text.splitlines() if ln.startswith("[")]
    assert bars and " 0/s" not in bars[0]
    last_rate = re.search(r"(\d+)/s$", bars[-1]).group(1)
    assert re.search(rf"{sent} sent in [\d.]+s \({last_rate}/s on average\)", text), text
    faults = re.search(r"provider faults, retried until accepted: (.*)", text)
    assert faults and "{" not in faults.group(1), text
    assert re.fullmatch(r"\d+ x -11[48] \([^)]+\)(, \d+ x -11[48] \([^)]+\))*", faults.group(1))
    # the stack is gone: no address is printed that would be dead by now, but the
    # API's, said to live until the demo ends (its dashboard follows the campaign)
    shown = [ln for ln in text.splitlines() if "http://" in ln]
    assert len(shown) == 1 and shown[0].startswith("API: "), shown
    assert "live dashboard at /dashboard" in shown[0] and "until the demo ends" in shown[0]
    assert "all processes stopped" in text


def test_ctrl_c_on_a_kept_stack_stops_every_process():
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "dreams_sms", "demo", "--size", "600", "--workers", "1",
         "--keep", "--no-flower"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    lines = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        lines.append(line)
        if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
            break
    text = "".join(lines)
    assert "stack is up" in text, text
    sandbox = re.search(r"sandbox: (http://\S+)", text).group(1)
    metrics = re.search(r"metrics: (http://\S+)", text).group(1)
    exports = re.search(r"^  export (.*)$", text, re.M).group(1)
    env = dict(kv.split("=", 1) for kv in exports.split())
    assert env["DREAMS_BASE_URL"] == f"{sandbox}/index.php/api"
    assert env["REDIS_URL"].startswith("redis://127.0.0.1:")
    assert _listening(sandbox) and _listening(metrics) and _listening(env["REDIS_URL"])
    # the pasted block works: the CLI reaches the kept stack
    child = {k: v for k, v in os.environ.items() if not k.startswith("DREAMS_")}
    child.update(env)
    status = subprocess.run([sys.executable, "-m", "dreams_sms", "status"], env=child,
                            capture_output=True, text=True, timeout=60, check=False)
    assert status.returncode == 0 and "Promo" in status.stdout, status.stdout + status.stderr
    import requests

    assert "dreams_stream_depth" in requests.get(metrics, timeout=10).text
    api = re.search(r"^API: +(http://\S+)", text, re.M).group(1)
    key = re.search(r"Authorization: Bearer (dsms_\S+?)'", text).group(1)
    senders = requests.get(f"{api}/v1/senders", headers={"Authorization": f"Bearer {key}"},
                           timeout=10).json()["senders"]
    assert {s["name"] for s in senders} == {"Dreams", "Alerts", "Promo"}
    board = requests.get(f"{api}/dashboard/data.json", auth=("ops", key), timeout=10)
    assert board.status_code == 200 and board.json()["campaigns"], board.text[:300]
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130
    assert "all processes stopped" in rest
    assert not _listening(sandbox) and not _listening(metrics) and not _listening(api)
