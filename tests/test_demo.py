"""The README's main command, driven the way a new user runs it."""

from __future__ import annotations

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
        [sys.executable, "-m", "dreams_sms.cli", "demo", "--size", "3000", "--workers", "1"],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    text = out.stdout
    assert out.returncode == 0, text + out.stderr
    assert "rows refused" in text and "invalid number" in text
    total = re.search(r"\| all\s+\|\s+(\d+) \|\s+(\d+) \|\s+(\d+) \|\s+(\d+) \|\s+(\d+) \|\s+(\d+) "
                      r"\|\s+(\d+) \|", text)
    assert total, text
    queued, sent, deferred, failed, expired, unknown, accepted = map(int, total.groups())
    assert queued == sent + deferred + failed + expired + unknown
    assert sent == accepted > 0
    assert deferred > 0  # the limited sender waits for tomorrow
    assert "sandbox duplicates: 0" in text
    assert "all processes stopped" in text
    flower = re.search(r"Flower: (http://\S+)", text).group(1)
    sandbox = re.search(r"sandbox: (http://\S+)", text).group(1)
    assert not _listening(flower) and not _listening(sandbox)


def test_ctrl_c_on_a_kept_stack_stops_every_process():
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "dreams_sms.cli", "demo", "--size", "600", "--workers", "1",
         "--keep", "--no-flower"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    lines = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        lines.append(line)
        if "stack is up" in line or time.monotonic() > deadline:
            break
    sandbox = re.search(r"sandbox: (http://\S+)", "".join(lines)).group(1)
    assert _listening(sandbox)
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130
    assert "all processes stopped" in rest
    assert not _listening(sandbox)
