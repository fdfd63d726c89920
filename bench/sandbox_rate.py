"""How fast the sandbox takes sendsms_multi calls on loopback.

The sandbox must not be what limits a load test of the worker. This runs it
in its own process (so client and server do not share a GIL), then fires
N calls of R recipients each from K threads, one requests.Session per thread.

    python bench/sandbox_rate.py --calls 2000 --threads 8
    python bench/sandbox_rate.py --url http://127.0.0.1:8025   # an already running one
"""

from __future__ import annotations

import argparse
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
from contextlib import contextmanager
from urllib.parse import urlencode

import requests

AUTH = {"user": "demo", "secret_key": "demo-secret"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def sandbox_process() -> Iterator[tuple[str, int]]:
    """`python -m dreams_sms.sandbox --admin` on a free port: (root URL, pid)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dreams_sms.sandbox", "--port", str(port), "--admin"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if "serving" not in line:
            raise RuntimeError(f"sandbox did not start: {line!r}")
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def payload(thread: int, recipients: int) -> str:
    """The reference shape: a list of one-item lists of {to, message}."""
    items = [
        [{"to": f"9665{thread:02d}{i:06d}", "message": f"Bench message {i} from thread {thread}"}]
        for i in range(recipients)
    ]
    return json.dumps(items)


def bench(
    url: str, calls: int, threads: int, recipients: int, pid: int | None = None
) -> dict[str, float]:
    api = f"{url}/index.php/api/sendsms_multi"
    admin = requests.post(f"{url}/_sandbox/balance", json={"set": 10**12}, timeout=10)
    if admin.status_code != 200:
        print("note: admin API off, balance left as it is", file=sys.stderr)
    answers: Counter[str] = Counter()
    lock = threading.Lock()
    share = [calls // threads + (1 if t < calls % threads else 0) for t in range(threads)]
    start_gate = threading.Barrier(threads + 1)

    def worker(t: int) -> None:
        # Encoded once: the client's own urlencode would otherwise eat the shared CPU.
        data = urlencode({**AUTH, "sender": "Dreams", "to": payload(t, recipients)}).encode()
        local: Counter[str] = Counter()
        with requests.Session() as session:
            session.headers["Content-Type"] = "application/x-www-form-urlencoded"
            session.post(api, data=data, timeout=30)  # warm the connection
            start_gate.wait()
            for _ in range(share[t]):
                local[session.post(api, data=data, timeout=30).text] += 1
        with lock:
            answers.update(local)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    start_gate.wait()
    started, cpu_before = time.perf_counter(), cpu_seconds(pid) if pid else None
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds(pid) if pid else None
    if set(answers) != {"Result:Success"}:
        raise SystemExit(f"unexpected answers: {dict(answers)}")
    return {
        "calls": calls,
        "seconds": elapsed,
        "calls_per_s": calls / elapsed,
        "msgs_per_s": calls * recipients / elapsed,
        "server_cpu_us_per_call": (
            (cpu_after - cpu_before) / calls * 1e6
            if cpu_before is not None and cpu_after is not None
            else float("nan")
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="root URL of a running sandbox (default: start one)")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--recipients", type=int, default=100)
    args = p.parse_args()
    if args.url:
        result = bench(args.url.rstrip("/"), args.calls, args.threads, args.recipients)
    else:
        with sandbox_process() as (url, pid):
            result = bench(url, args.calls, args.threads, args.recipients, pid)
    print(
        f"sendsms_multi x{args.recipients} recipients: {result['calls']} calls from "
        f"{args.threads} threads in {result['seconds']:.2f} s -> "
        f"{result['calls_per_s']:.0f} calls/s, {result['msgs_per_s']:.0f} msgs/s "
        f"(sandbox CPU {result['server_cpu_us_per_call']:.0f} us per call, {os.cpu_count()} CPUs "
        f"shared with the client)"
    )


if __name__ == "__main__":
    main()
