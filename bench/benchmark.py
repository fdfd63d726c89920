"""Throughput and memory of the queue, beside the naive design, in one run.

Everything runs on loopback against private processes (redis-server on free
ports, the sandbox, real `celery worker` processes); the Redis on 6379 is
never touched.

    python bench/benchmark.py                  # default sizes, about 5 minutes on 2 cores
    python bench/benchmark.py --quick          # a smoke run (< 1 min)
    python bench/benchmark.py --latency-ms 50 --workers 2 --concurrency 4 --output BENCHMARKS.md
    python bench/benchmark.py --profile prof/  # also profile (cProfile, py-spy if installed)

It measures:

1. enqueue rate of `Producer.send_bulk` beside one Celery `apply_async` per message;
2. Redis bytes per queued message (INFO `used_memory` before/after), both designs;
3. end-to-end delivery rate (first enqueue -> the sandbox accepted all N) through
   W worker processes x c slots, at 0 ms and at the given latency, beside the
   direct limit (W*c threads calling sendsms_multi, no queue) and the naive
   design (`bench/naive_app.py`: one task and one sendsms call per message);
4. scaling: the end-to-end rate at 1, 2 and 4 worker processes;
5. Redis memory with 1,000,000 queued messages (no workers);
6. OTP latency at the given latency: one `send(..., priority="high")` at a time on
   an idle queue, and a steady trickle of them during a large campaign of the same
   sender (send returned -> the sandbox's record of accepting it);
7. Redis round trips (INFO `total_reads_processed`, every client) per provider
   batch over each end-to-end queue run, what the clients sent by command (Redis
   MONITOR, in one more untimed run), and worker CPU per message beside the
   direct client's;
8. the HTTP API (`dreams-sms serve`, one uvicorn process): an NDJSON campaign
   posted in one request beside `send_bulk` of the same rows in the same run, and
   single `POST /v1/messages` at a fixed rate (latency percentiles, from the time
   each request was due, so a slow answer also delays those behind it);

plus the sandbox's own rate and the CPU each process used, so one can see
what limited each run. Timed runs are repeated (`--repeat`) and the median
kept. It prints the tables and writes them, with the machine and the command
line, to BENCHMARKS.md (or `--output`).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import platform
import pstats
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (str(BENCH), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import celery  # noqa: E402
import naive_app  # noqa: E402
import redis  # noqa: E402
import requests  # noqa: E402

from dreams_sms.config import Settings  # noqa: E402
from dreams_sms.ops.localredis import LocalRedis  # noqa: E402
from dreams_sms.ops.stack import DEMO_SECRET, DEMO_USER, Proc, Stack  # noqa: E402
from dreams_sms.producer import Producer  # noqa: E402
from dreams_sms.provider.client import DreamsClient, multi_payload  # noqa: E402
from dreams_sms.queue.control import Control  # noqa: E402
from dreams_sms.sandbox.testing import SandboxAdmin  # noqa: E402

SENDER = "Dreams"
TEXT = "Campaign {tag} message {i:07d}: your weekly offer is here"

FULL = {
    "enqueue": 50_000,
    "naive_enqueue": 10_000,
    "e2e": 50_000,
    "naive": 1_000,
    "scaling": 20_000,
    "million": 1_000_000,
    "sandbox_calls": 1_500,
    "otp_idle": 100,
    "otp_campaign": 100_000,
    "workers": 2,
    "concurrency": 4,
    "scale_workers": "1,2,4",
    "repeat": 3,
    "api_rows": 100_000,
    "api_singles": 3_000,
    "api_rate": 200.0,
}
QUICK = {
    "enqueue": 2_000,
    "naive_enqueue": 300,
    "e2e": 2_000,
    "naive": 100,
    "scaling": 1_000,
    "million": 5_000,
    "sandbox_calls": 100,
    "otp_idle": 20,
    "otp_campaign": 5_000,
    "workers": 1,
    "concurrency": 2,
    "scale_workers": "1,2",
    "repeat": 1,
    "api_rows": 2_000,
    "api_singles": 100,
    "api_rate": 50.0,
}

# Targets.
T_ENQUEUE = 50.0  # x naive
T_BYTES = 0.25  # x naive
T_MILLION_MB = 500.0
T_DIRECT = 0.90  # x direct, at equal concurrency, at the latency
T_DIRECT_0 = 0.42  # x direct at 0 ms: the figure before the drain redesign, to beat
T_ROUND_TRIPS = 3.0  # Redis reads per provider batch (about 9 before the redesign)
T_OTP_IDLE_MS = 30.0  # idle p90 <= latency + this
T_OTP_BUSY_MS = 30.0  # during a campaign p90 <= 2 x latency + this
OTP_PAUSE = 0.15  # s between idle OTPs: the last chain has ended
T_NAIVE_E2E = 100.0  # x naive, at the latency
T_API_BULK = 0.20  # HTTP NDJSON campaign x send_bulk's rate, same run
T_REPLICATED_COST = 0.10  # a lease confirmed on a replica costs at most this share
SANDBOX_BUSY = 0.85  # cores: the sandbox is one GIL-bound process


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- data ----------------------------------------------------------------------------------
def _row(i: int, tag: str) -> tuple[str, str]:
    # 96650XXXXXXX: valid Saudi mobiles (national 50XXXXXXX) for i < 10,000,000
    return f"96650{i % 10_000_000:07d}", TEXT.format(tag=tag, i=i)


def rows(n: int, tag: str) -> list[tuple[str, str]]:
    return [_row(i, tag) for i in range(n)]


def iter_rows(n: int, tag: str) -> Iterator[tuple[str, str]]:
    return (_row(i, tag) for i in range(n))


def used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


# -- CPU accounting (Linux /proc) -------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_by_group() -> dict[int, float]:
    """CPU seconds (user + system) of every live process, summed per process group."""
    out: dict[int, float] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pgrp = int(fields[2])
        out[pgrp] = out.get(pgrp, 0.0) + (int(fields[11]) + int(fields[12])) / _TICK
    return out


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


class CpuMeter:
    """CPU used by named groups of processes (each started in its own session, so
    a group id is the pid of its leader) and by this process ("bench")."""

    def __init__(self, groups: dict[str, Sequence[int]]):
        self.groups = {k: list(v) for k, v in groups.items() if v}
        self._start: dict[str, float] = {}
        self._t0 = 0.0

    def _snapshot(self) -> dict[str, float]:
        by = _cpu_by_group()
        snap = {k: sum(by.get(pid, 0.0) for pid in pids) for k, pids in self.groups.items()}
        snap["bench"] = _self_cpu()
        return snap

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._start = self._snapshot()

    def cores(self) -> dict[str, float]:
        """Cores used by each group since `start` (CPU seconds / wall seconds)."""
        wall = max(time.perf_counter() - self._t0, 1e-9)
        end = self._snapshot()
        return {k: (end[k] - self._start.get(k, 0.0)) / wall for k in end}


def stack_groups(stack: Stack, workers: Sequence[Proc] | None = None) -> dict[str, list[int]]:
    return {
        "workers": [w.pid for w in (stack.workers if workers is None else workers)],
        "sandbox": [stack.sandbox.pid] if stack.sandbox else [],
        "redis": [stack.redis.proc.pid] if stack.redis and stack.redis.proc else [],
        "beat": [stack.beat.pid] if stack.beat and stack.beat.alive() else [],
    }


# -- profiling (only with --profile) -----------------------------------------------------------
@contextlib.contextmanager
def py_spy(pids: Sequence[int], out: Path | None, name: str) -> Iterator[None]:
    """Sample `pids` (and their children) with py-spy while the block runs."""
    exe = shutil.which("py-spy") if out else None
    if out is None:
        yield
        return
    if exe is None:
        log("py-spy is not installed (pip install py-spy): no worker profile")
        yield
        return
    spies = []
    for k, pid in enumerate(pids):
        raw = out / f"{name}-{k}.txt"
        spies.append((raw, subprocess.Popen(
            [exe, "record", "-p", str(pid), "--subprocesses", "--nonblocking", "-r", "100",
             "-f", "raw", "-o", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        for _, spy in spies:
            spy.send_signal(signal.SIGINT)
        for _, spy in spies:
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
        raws = [raw for raw, _ in spies if raw.exists()]
        if raws:
            summary = out / f"{name}-summary.txt"
            summary.write_text(summarize_collapsed(raws), encoding="utf-8")
            log(f"profile: {summary} (collapsed stacks: {', '.join(str(r) for r in raws)})")


_FRAMEWORK = ("celery/", "billiard/", "click/", "kombu/", "<frozen runpy>")


def summarize_collapsed(paths: Sequence[Path], top: int = 40) -> str:
    """Inclusive and self shares of each frame in py-spy's collapsed ("raw") output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            frames = stack.split(";")
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    total = max(total, 1)
    ours = [(f, n) for f, n in inclusive.most_common()
            if not f.startswith("process ") and not any(x in f for x in _FRAMEWORK)]
    lines = [f"{total} samples (Celery/billiard/click frames left out of the inclusive list)",
             "", "-- inclusive"]
    lines += [f"{n / total:6.1%}  {f}" for f, n in ours[:top]]
    lines += ["", "-- self"]
    lines += [f"{n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


# -- results -----------------------------------------------------------------------------------
@dataclass
class Run:
    name: str
    n: int
    seconds: float
    cores: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    kind: str = ""  # queue, direct, naive
    rates: list[float] = field(default_factory=list)  # every repetition

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("nan")

    def cpu_us_per_msg(self, who: str | None = None) -> float:
        cores = self.cores.get(who, 0.0) if who else sum(self.cores.values())
        return cores * self.seconds / self.n * 1e6 if self.n else float("nan")


def median(runs: Sequence[Run]) -> Run:
    """The run with the median rate (the lower middle for an even count); keeps all rates."""
    ordered = sorted(runs, key=lambda r: r.rate)
    mid = ordered[(len(ordered) - 1) // 2]
    mid.rates = [r.rate for r in runs]
    return mid


def repeat(times: int, make: Callable[[int], Run]) -> Run:
    return median([make(k) for k in range(max(times, 1))])


@dataclass
class Otp:
    """Latencies (ms) from `send(..., priority="high")` returning to the sandbox
    having accepted the message, by the sandbox's own clock."""
    condition: str  # idle, campaign
    latency_ms: float
    ms: list[float] = field(default_factory=list)  # from send returning
    call_ms: list[float] = field(default_factory=list)  # from send being called
    campaign: int = 0  # messages of the same sender queued alongside
    seconds: float = 0.0  # wall time of the condition
    campaign_rate: float = float("nan")  # msgs/s of the campaign while OTPs went through

    def pct(self, q: float) -> float:
        return percentile(self.ms, q)

    def send_ms(self) -> list[float]:
        """How long each send() call itself took."""
        return [c - m for c, m in zip(self.call_ms, self.ms, strict=True)]


def percentile(xs: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); q in 0..100."""
    if not xs:
        return float("nan")
    ordered = sorted(xs)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    enqueue: Run | None = None
    enqueue_naive: Run | None = None
    enqueue_naive_events: Run | None = None
    e2e: dict[float, Run] = field(default_factory=dict)
    direct: dict[float, Run] = field(default_factory=dict)
    naive: dict[float, Run] = field(default_factory=dict)
    scaling: list[tuple[int, int, Run]] = field(default_factory=list)  # (workers, slots, run)
    million: Run | None = None
    sandbox: dict[str, float] = field(default_factory=dict)
    otp: dict[str, Otp] = field(default_factory=dict)  # idle, campaign
    # what clients sent by command (MONITOR), its provider calls and messages
    requests: tuple[Counter[str], int, int] | None = None
    api_bulk: Run | None = None  # an NDJSON campaign through POST /v1/campaigns
    api_bulk_base: Run | None = None  # send_bulk of the same rows, same run
    api_single: Otp | None = None  # POST /v1/messages at a fixed rate: ms per request
    replicated: dict[int, Run] = field(default_factory=dict)  # replicas confirmed -> e2e run


# -- 10: the replicated lease ------------------------------------------------------------------
def bench_replicated(res: Results, a: argparse.Namespace) -> None:
    """End to end with and without each lease confirmed on a replica (WAIT), on one
    master with one replica attached in both runs, interleaved: the cost of the
    confirmation alone."""
    slots = a.workers * a.concurrency
    with tempfile.TemporaryDirectory(prefix="dreams-bench-repl-") as tmp:
        master = LocalRedis(directory=Path(tmp) / "m", appendonly=True)
        (Path(tmp) / "m").mkdir()
        (Path(tmp) / "r").mkdir()
        master.start()
        replica = LocalRedis(directory=Path(tmp) / "r", appendonly=True,
                             extra=["--replicaof", "127.0.0.1", str(master.port)])
        replica.start()
        stacks: dict[int, Stack] = {}
        try:
            link = redis.Redis(port=replica.port, decode_responses=True)
            deadline = time.monotonic() + 30
            while link.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise RuntimeError("the replica did not sync")
                time.sleep(0.1)
            for acks in (1, 0):
                env = {**stack_env(slots, a.batch_size, a.latency_ms),
                       "DREAMS_REPLICA_ACKS": str(acks), "DREAMS_PREFIX": f"repl{acks}"}
                # A database each: the Celery queues are not under the key prefix.
                url = master.url.rsplit("/", 1)[0] + f"/{acks + 1}"
                stacks[acks] = Stack(workers=a.workers, concurrency=a.concurrency,
                                     redis_url=url, env=env).start()
            parts = {}
            for acks, stack in stacks.items():
                admin = SandboxAdmin(stack.sandbox_url, timeout=30)
                producer = Producer(Settings.from_env(stack.env()))
                warm(admin, lambda d, p=producer: p.send_bulk(SENDER, d),
                     2 * slots * a.batch_size, stack)
                parts[acks] = (stack, producer, admin)
            runs: dict[int, list[Run]] = {1: [], 0: []}
            for k in range(a.repeat):
                for acks in (1, 0):
                    stack, producer, admin = parts[acks]
                    log(f"end to end, lease confirmed on {acks} replicas, {a.e2e} messages "
                        f"at {a.latency_ms:g} ms ({k + 1}/{a.repeat})")
                    runs[acks].append(run_e2e(stack, producer, admin, a.e2e, a.latency_ms,
                                              f"r{acks}-{k}", slots, a.batch_size))
                    log(f"  {runs[acks][-1].rate:,.0f} msgs/s")
            res.replicated = {acks: median(r) for acks, r in runs.items()}
            for _, producer, _ in parts.values():
                producer.r.close()
        finally:
            for stack in stacks.values():
                stack.stop()
            replica.close()
            master.close()



# -- 8: the HTTP API ------------------------------------------------------------------------
def _ndjson(n: int, tag: str) -> bytes:
    import json

    return b"".join(json.dumps({"to": to, "text": text}).encode() + b"\n"
                    for to, text in iter_rows(n, tag))


@contextlib.contextmanager
def api_server(url: str, workdir: Path) -> Iterator[tuple[str, str, Proc]]:
    """`dreams-sms serve` as its own process on a private Redis: (base URL, an API key)."""
    from dreams_sms.api.keys import ApiKeys
    from dreams_sms.ops.localredis import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DREAMS_", "CELERY"))}
    env.update(REDIS_URL=url, DREAMS_API_RATE="0", PYTHONPATH=pythonpath())
    r = redis.Redis.from_url(url, decode_responses=True)
    _, secret = ApiKeys(r).create([SENDER], name="bench")
    proc = Proc("api", [sys.executable, "-m", "dreams_sms", "serve", "--address", "127.0.0.1",
                        "--port", str(port)], env, workdir / "api.log")
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/healthz", timeout=1).ok:
                    break
            if not proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"dreams-sms serve did not start; see {proc.log}")
            time.sleep(0.1)
        yield base, secret, proc
    finally:
        proc.stop()
        r.close()


def bench_api_bulk(n: int, tag: str, workdir: Path) -> Run:
    """One NDJSON body of n rows to POST /v1/campaigns; timed from the request to the answer."""
    body = _ndjson(n, tag)
    with LocalRedis() as server, api_server(server.url, workdir) as (base, secret, proc):
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/x-ndjson"}
        session = requests.Session()
        warm_up = session.post(f"{base}/v1/campaigns?sender={SENDER}", data=_ndjson(10, "warm"),
                               headers=headers, timeout=60)
        warm_up.raise_for_status()
        meter = CpuMeter({"api": [proc.pid]})
        meter.start()
        t0 = time.perf_counter()
        res = session.post(f"{base}/v1/campaigns?sender={SENDER}", data=body, headers=headers,
                           timeout=600)
        seconds = time.perf_counter() - t0
        cores = meter.cores()
        res.raise_for_status()
        queued = res.json()["queued"]
        r = redis.Redis.from_url(server.url)
        in_redis = sum(r.xlen(k) for k in r.scan_iter("dreams:q:*")) - 10
        r.close()
    if queued != n or in_redis != n:
        raise RuntimeError(f"API queued {queued} ({in_redis} in Redis) of {n}")
    return Run("HTTP NDJSON campaign", n, seconds, cores=cores, extra={"body_mb": len(body) / 1e6})


def bench_api_single(count: int, rate: float, workdir: Path, threads: int = 16) -> Otp:
    """`count` POST /v1/messages at `rate` per second; ms from each one's due time."""
    from concurrent.futures import ThreadPoolExecutor

    out = Otp("single messages", 0.0, campaign=0)
    local = threading.local()
    with LocalRedis() as server, api_server(server.url, workdir) as (base, secret, _):
        headers = {"Authorization": f"Bearer {secret}"}

        def post(i: int, due: float) -> tuple[float, float, int]:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            to, text = _row(i, "single")
            start = time.perf_counter()
            res = session.post(f"{base}/v1/messages", json={"to": to, "text": text,
                                                            "sender": SENDER},
                               headers=headers, timeout=60)
            end = time.perf_counter()
            return (end - due) * 1000, (end - start) * 1000, res.status_code

        for i in range(20):  # connections, scripts, the Celery app
            post(i, time.perf_counter())
        t0 = time.perf_counter() + 0.05
        with ThreadPoolExecutor(threads) as pool:
            futures = []
            for i in range(count):
                due = t0 + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(post, 20 + i, due))
            results = [f.result() for f in futures]
        out.seconds = time.perf_counter() - t0
    bad = [code for _, _, code in results if code != 202]
    if bad:
        raise RuntimeError(f"{len(bad)} single messages refused: {Counter(bad)}")
    out.ms = [due_ms for due_ms, _, _ in results]
    out.call_ms = [call for _, call, _ in results]
    out.campaign_rate = count / out.seconds
    return out


def bench_api(res: Results, a: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="dreams-bench-api-") as tmp:
        work = Path(tmp)
        log(f"api: send_bulk of {a.api_rows:,} rows (streamed), then the same rows as one "
            f"NDJSON POST /v1/campaigns, x{a.repeat}")
        res.api_bulk_base = repeat(a.repeat, lambda k: bench_producer_enqueue(
            a.api_rows, streamed=True, tag=f"ab{k}"))
        res.api_bulk = repeat(a.repeat, lambda k: bench_api_bulk(a.api_rows, f"ah{k}", work))
        log(f"  send_bulk {res.api_bulk_base.rate:,.0f} msgs/s, HTTP {res.api_bulk.rate:,.0f} "
            f"msgs/s ({_div(res.api_bulk.rate, res.api_bulk_base.rate):.0%})")
        log(f"api: {a.api_singles:,} POST /v1/messages at {a.api_rate:g}/s")
        res.api_single = bench_api_single(a.api_singles, a.api_rate, work)
        s = res.api_single
        log(f"  p50 {s.pct(50):.1f} ms, p99 {s.pct(99):.1f} ms, {s.campaign_rate:.0f}/s achieved")


# -- 1, 2, 5: enqueue and memory --------------------------------------------------------------
def bench_producer_enqueue(n: int, *, streamed: bool = False, tag: str = "enq",
                           profile: Path | None = None) -> Run:
    """`Producer.send_bulk` of n rows into a fresh private Redis, no workers."""
    with LocalRedis() as server:
        settings = Settings.from_env({"REDIS_URL": server.url})
        producer = Producer(settings)
        producer.send_bulk(SENDER, rows(10, "warm"))  # connections, script, group, Celery app
        r = redis.Redis.from_url(server.url)
        data: object = iter_rows(n, tag) if streamed else rows(n, tag)
        prof = cProfile.Profile() if profile else None
        before = used_memory(r)
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        result = producer.send_bulk(SENDER, data)  # type: ignore[arg-type]
        if prof:
            prof.disable()
        seconds = time.perf_counter() - t0
        after = used_memory(r)
        info = r.info("memory")
        queued = sum(r.xlen(k) for k in r.scan_iter(f"{settings.prefix}:q:*"))
        r.close()
        producer.r.close()
    if result.queued != n:
        raise RuntimeError(f"producer queued {result.queued} of {n}: {result.rejected[:3]}")
    if prof and profile:
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
        path = profile / "enqueue-producer-cprofile.txt"
        path.write_text(out.getvalue(), encoding="utf-8")
        log(f"profile: {path}")
    return Run("producer send_bulk", n, seconds, extra={
        "bytes_per_msg": (after - before) / n,
        "used_memory_mb": after / 1e6,
        "delta_mb": (after - before) / 1e6,
        "rss_mb": int(info["used_memory_rss"]) / 1e6,
        "queued_in_redis": float(queued),
    })


def bench_naive_enqueue(n: int, *, sent_event: bool = False) -> Run:
    """One Celery `apply_async` per message (one reused producer), ignore_result, no worker."""
    with LocalRedis() as server:
        app = naive_app.make_app(server.url)
        app.conf.task_send_sent_event = sent_event
        task = app.tasks[naive_app.TASK]
        r = redis.Redis.from_url(server.url)
        data = rows(n, "naive-enq")
        with app.producer_or_acquire() as prod:
            task.apply_async(args=("966500000000", "warm", SENDER), producer=prod)
            before = used_memory(r)
            t0 = time.perf_counter()
            for to, text in data:
                task.apply_async(args=(to, text, SENDER), producer=prod)
            seconds = time.perf_counter() - t0
        after = used_memory(r)
        queued = r.llen(naive_app.QUEUE) - 1
        r.close()
        app.close()
    if queued != n:
        raise RuntimeError(f"naive queue holds {queued} of {n} task messages")
    name = "naive apply_async" + (" + sent events" if sent_event else "")
    return Run(name, n, seconds, extra={"bytes_per_msg": (after - before) / n})


# -- 3, 4: end to end -------------------------------------------------------------------------
def prepare_sandbox(admin: SandboxAdmin, latency_ms: float) -> None:
    admin.reset()  # clears the record, the counters and the faults
    admin.set_balance(10**12)
    admin.faults(latency_ms=latency_ms)


def wait_accepted(admin: SandboxAdmin, n: int, timeout: float, stack: Stack | None = None,
                  every: float = 0.02) -> float:
    """Poll the sandbox until it accepted n messages; returns perf_counter() at that point."""
    deadline = time.monotonic() + timeout
    while True:
        got = admin.stats()["accepted"]
        if got >= n:
            return time.perf_counter()
        if time.monotonic() > deadline:
            logs = stack.logs()[-6000:] if stack else ""
            raise RuntimeError(f"only {got} of {n} accepted after {timeout:.0f}s\n{logs}")
        time.sleep(every)


def check_record(admin: SandboxAdmin, n: int, what: str) -> None:
    stats = admin.stats()
    if stats["accepted"] != n or stats["duplicates"]:
        raise RuntimeError(f"{what}: sandbox accepted {stats['accepted']} of {n}, "
                           f"{stats['duplicates']} duplicates")


def timeout_for(n: int, slots: int, latency_ms: float, per_call: int) -> float:
    """Generous: ten times the latency-bound time, plus slack."""
    calls = n / max(per_call, 1)
    return 60.0 + 10 * calls * (latency_ms / 1000.0 + 0.005) / max(slots, 1)


class RedisTraffic:
    """Reads the server processed (INFO stats `total_reads_processed`: one per
    request read off a socket, a pipeline's commands often in one, a request
    over 64 KB in two or more), over a stretch of time, from every client of
    one Redis. Its own requests are taken out."""

    def __init__(self, r: redis.Redis):
        self.r = r
        self._reads = 0
        self._polls = 0

    def start(self) -> None:
        self._reads = int(self.r.info("stats")["total_reads_processed"])
        self._polls = 0

    def settle(self, control: Control, sender: str, timeout: float = 10.0) -> None:
        """Wait until every drain chain of `sender` has ended (its slot released)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._polls += 1  # ZREMRANGEBYSCORE + ZCARD
            if control.live_slots(sender) == 0:
                return
            time.sleep(0.05)

    def stop(self) -> int:
        """Reads since `start`, without this meter's own."""
        reads = int(self.r.info("stats")["total_reads_processed"])
        return reads - self._reads - (1 + 2 * self._polls)


def script_names() -> dict[str, str]:
    """SHA1 -> `module.NAME` of every Lua script the package defines (for MONITOR's EVALSHA)."""
    import hashlib
    import importlib

    out: dict[str, str] = {}
    for module in ("queue.lease", "queue.store", "producer", "queue.control", "queue.quota",
                   "queue.delayed", "queue.rate"):
        mod = importlib.import_module(f"dreams_sms.{module}")
        for name, value in vars(mod).items():
            if isinstance(value, str) and "redis.call" in value:
                short = module.rsplit(".", 1)[-1]
                out[hashlib.sha1(value.encode()).hexdigest()] = f"{short}.{name}"
    return out


def requests_by_command(stack: Stack, producer: Producer, admin: SandboxAdmin, n: int,
                        latency_ms: float, slots: int, batch: int) -> tuple[Counter[str], int]:
    """Untimed: one more end-to-end run with Redis MONITOR on, counting what clients
    sent (a script's own commands left out), by command; EVALSHA by script name."""
    names = script_names()
    seen: Counter[str] = Counter()
    done = threading.Event()
    mon_r = redis.Redis.from_url(stack.redis_url or "", decode_responses=True)
    monitor = mon_r.monitor()
    monitor.__enter__()  # MONITOR is on once this returns

    def listen() -> None:
        with contextlib.suppress(Exception):
            for cmd in monitor.listen():
                if done.is_set():
                    return
                if cmd.get("client_type") == "lua":
                    continue
                words = str(cmd.get("command", "")).split(" ", 2)
                name = words[0].upper()
                if name == "EVALSHA" and len(words) > 1:
                    name = f"EVALSHA {names.get(words[1], words[1][:8])}"
                seen[name] += 1

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        prepare_sandbox(admin, latency_ms)
        producer.send_bulk(SENDER, rows(n, "mon"))
        wait_accepted(admin, n, timeout_for(n, slots, latency_ms, batch), stack)
        RedisTraffic(producer.r).settle(producer.control, SENDER)
        stats = admin.stats()
    finally:
        done.set()
        producer.r.ping()  # one more line, so the listener sees `done`
        thread.join(timeout=5)
        with contextlib.suppress(Exception):
            monitor.__exit__(None, None, None)
        mon_r.close()
    check_record(admin, n, "MONITOR run")
    for own in ("ZREMRANGEBYSCORE", "ZCARD"):  # ours: the settle loop
        seen.pop(own, None)
    seen["PING"] -= 1  # ours: the line that stops the listener
    seen += Counter()  # drops what fell to zero
    return seen, int(stats["calls"].get("sendsms_multi", 0)) + int(stats["calls"].get("sendsms", 0))


def run_e2e(stack: Stack, producer: Producer, admin: SandboxAdmin, n: int, latency_ms: float,
            tag: str, slots: int, batch: int) -> Run:
    prepare_sandbox(admin, latency_ms)
    data = rows(n, tag)
    traffic = RedisTraffic(redis.Redis.from_url(stack.redis_url or "", decode_responses=True))
    traffic.start()
    meter = CpuMeter(stack_groups(stack))
    meter.start()
    t0 = time.perf_counter()
    result = producer.send_bulk(SENDER, data)
    enqueued = time.perf_counter() - t0
    t1 = wait_accepted(admin, n, timeout_for(n, slots, latency_ms, batch), stack)
    cores = meter.cores()
    traffic.settle(producer.control, SENDER)
    reads = traffic.stop()
    traffic.r.close()
    if result.queued != n:
        raise RuntimeError(f"queued {result.queued} of {n}")
    stats = admin.stats()
    check_record(admin, n, f"end-to-end {tag}")
    calls = int(stats["calls"].get("sendsms_multi", 0)) + int(stats["calls"].get("sendsms", 0))
    return Run(f"queue @{latency_ms:g} ms", n, t1 - t0, cores,
               {"enqueue_s": enqueued, "redis_reads": float(reads), "batches": float(calls)},
               kind="queue")


def run_direct(settings: Settings, admin: SandboxAdmin, n: int, latency_ms: float, tag: str,
               threads: int, batch: int, groups: dict[str, list[int]]) -> Run:
    """The limit without a queue: `threads` threads, each its own DreamsClient, in a loop."""
    prepare_sandbox(admin, latency_ms)
    data = rows(n, tag)
    batches = iter([data[i:i + batch] for i in range(0, n, batch)])
    lock = threading.Lock()
    gate = threading.Barrier(threads + 1)
    errors: list[BaseException] = []
    clients = [DreamsClient(settings) for _ in range(threads)]

    def work(client: DreamsClient) -> None:
        try:
            client.balance()  # open the keep-alive connection before the clock starts
        except Exception as exc:
            errors.append(exc)
        gate.wait()
        try:
            while not errors:
                with lock:
                    items = next(batches, None)
                if items is None:
                    return
                client.send_multi(SENDER, items)
        except Exception as exc:
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(c,), daemon=True) for c in clients]
    for t in pool:
        t.start()
    meter = CpuMeter(groups)
    gate.wait()
    meter.start()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - t0
    cores = meter.cores()
    for c in clients:
        c.close()
    if errors:
        raise RuntimeError(f"direct run failed: {errors[0]!r}")
    check_record(admin, n, f"direct {tag}")
    return Run(f"direct @{latency_ms:g} ms", n, seconds, cores, kind="direct")


def publish_naive(app: celery.Celery, data: Sequence[tuple[str, str]]) -> None:
    task = app.tasks[naive_app.TASK]
    with app.producer_or_acquire() as prod:
        for to, text in data:
            task.apply_async(args=(to, text, SENDER), producer=prod)


def run_naive(stack: Stack, app: celery.Celery, workers: Sequence[Proc], admin: SandboxAdmin,
              n: int, latency_ms: float, tag: str, slots: int) -> Run:
    prepare_sandbox(admin, latency_ms)
    data = rows(n, tag)
    meter = CpuMeter(stack_groups(stack, workers))
    meter.start()
    t0 = time.perf_counter()
    publish_naive(app, data)
    enqueued = time.perf_counter() - t0
    t1 = wait_accepted(admin, n, timeout_for(n, slots, latency_ms, 1), stack)
    cores = meter.cores()
    check_record(admin, n, f"naive {tag}")
    return Run(f"naive @{latency_ms:g} ms", n, t1 - t0, cores, {"enqueue_s": enqueued},
               kind="naive")


def otp_row(condition: str, k: int) -> tuple[str, str]:
    # 966509XXXXXX: apart from the campaign's numbers (96650 + i, i < 9,000,000)
    return f"966509{k:06d}", f"Your {condition} code is {k % 1_000_000:06d}. Valid for 5 minutes."


def otp_times(admin: SandboxAdmin, sent: dict[tuple[str, str], tuple[float, float]],
              condition: str) -> tuple[list[float], list[float]]:
    """ms from each send returning, and from it being called, to the sandbox's
    record of accepting the message."""
    accepted: dict[tuple[str, str], float] = {}
    for rec in admin.messages(SENDER, page=20_000):
        key = (rec["to"], rec["text"])
        if key in sent and key not in accepted:
            accepted[key] = float(rec["time"])
    missing = len(sent) - len(accepted)
    if missing:
        raise RuntimeError(f"OTP {condition}: {missing} of {len(sent)} not in the sandbox's record")
    return ([(accepted[key] - t[1]) * 1000.0 for key, t in sent.items()],
            [(accepted[key] - t[0]) * 1000.0 for key, t in sent.items()])


def send_otp(producer: Producer, sent: dict[tuple[str, str], tuple[float, float]],
             condition: str) -> None:
    to, text = otp_row(condition, len(sent))
    called = time.time()
    producer.send(to, text, SENDER, priority="high")
    sent[(to, text)] = (called, time.time())


def run_otp_idle(producer: Producer, admin: SandboxAdmin, count: int, latency_ms: float,
                 stack: Stack) -> Otp:
    """One high-priority message at a time on an idle queue (no chain running)."""
    prepare_sandbox(admin, latency_ms)
    sent: dict[tuple[str, str], tuple[float, float]] = {}
    t0 = time.perf_counter()
    for k in range(count):
        send_otp(producer, sent, "idle")
        wait_accepted(admin, k + 1, 30, stack, every=0.005)
        time.sleep(OTP_PAUSE)  # the chains end (a take finds the streams empty)
    seconds = time.perf_counter() - t0
    check_record(admin, count, "OTP idle")
    ms, call_ms = otp_times(admin, sent, "idle")
    return Otp("idle", latency_ms, ms, call_ms, seconds=seconds)


def run_otp_campaign(producer: Producer, admin: SandboxAdmin, campaign: int, latency_ms: float,
                     stack: Stack, slots: int, batch: int, *, seed: int = 7) -> Otp:
    """A campaign of the same sender is queued; while it drains, high-priority messages
    go in one at a time, spaced about one provider latency apart (jittered), until
    fewer than two rounds of batches of the campaign are left."""
    prepare_sandbox(admin, latency_ms)
    rng = random.Random(seed)
    spacing = max(latency_ms / 1000.0, 0.02)
    t0 = time.perf_counter()
    result = producer.send_bulk(SENDER, rows(campaign, "otpc"))
    if result.queued != campaign:
        raise RuntimeError(f"queued {result.queued} of {campaign}")
    sent: dict[tuple[str, str], tuple[float, float]] = {}
    stop_at = max(campaign - 2 * slots * batch, campaign // 2)
    while admin.stats()["accepted"] - len(sent) < stop_at:
        send_otp(producer, sent, "campaign")
        time.sleep(spacing * rng.uniform(0.5, 1.5))
    total = campaign + len(sent)
    t1 = wait_accepted(admin, total, timeout_for(campaign, slots, latency_ms, batch), stack)
    check_record(admin, total, "OTP during a campaign")
    ms, call_ms = otp_times(admin, sent, "campaign")
    return Otp("campaign", latency_ms, ms, call_ms, campaign=campaign, seconds=t1 - t0,
               campaign_rate=total / (t1 - t0))


def sandbox_rate(url: str, pid: int | None, calls: int, threads: int, recipients: int
                 ) -> dict[str, float]:
    """The sandbox's own rate, measured as bench/sandbox_rate.py does: pre-encoded
    sendsms_multi bodies fired from `threads` threads, one session each."""
    api = f"{url}/index.php/api/sendsms_multi"
    share = [calls // threads + (1 if t < calls % threads else 0) for t in range(threads)]
    gate = threading.Barrier(threads + 1)
    bad: list[str] = []

    def work(t: int) -> None:
        items = [(f"96650{t:02d}{i:05d}", f"Sandbox rate {i} from thread {t}")
                 for i in range(recipients)]
        body = urlencode({"user": DEMO_USER, "secret_key": DEMO_SECRET, "sender": SENDER,
                          "to": multi_payload(items)}).encode()
        try:
            with requests.Session() as s:
                s.headers["Content-Type"] = "application/x-www-form-urlencoded"
                s.post(api, data=body, timeout=30)
                gate.wait()
                for _ in range(share[t]):
                    answer = s.post(api, data=body, timeout=30).text
                    if answer != "Result:Success":
                        bad.append(answer)
        except Exception as exc:
            bad.append(repr(exc))
            with contextlib.suppress(threading.BrokenBarrierError):
                gate.abort()

    pool = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
    for t in pool:
        t.start()
    meter = CpuMeter({"sandbox": [pid]} if pid else {})
    with contextlib.suppress(threading.BrokenBarrierError):
        gate.wait()
    meter.start()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - t0
    cores = meter.cores()
    if bad:
        raise RuntimeError(f"sandbox answered {bad[0]!r}")
    return {
        "calls": float(calls),
        "threads": float(threads),
        "recipients": float(recipients),
        "seconds": seconds,
        "calls_per_s": calls / seconds,
        "msgs_per_s": calls * recipients / seconds,
        "cpu_us_per_call": cores.get("sandbox", float("nan")) * seconds / calls * 1e6,
        "cores": cores.get("sandbox", float("nan")),
    }


def pythonpath() -> str:
    parts = [str(ROOT), str(BENCH)]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


def stack_env(slots: int, batch: int, latency_ms: float) -> dict[str, str]:
    return {
        "DREAMS_BATCH_WAIT": "0",
        "DREAMS_BATCH_SIZE": str(batch),
        "DREAMS_SENDER_PARALLELISM": str(slots),
        "DREAMS_READ_TIMEOUT": str(max(10.0, 20 * latency_ms / 1000.0)),
        "PYTHONPATH": pythonpath(),  # a fresh clone need not be pip-installed
    }


def warm(admin: SandboxAdmin, send: Callable[[list[tuple[str, str]]], object], n: int,
         stack: Stack) -> None:
    """Push n messages through and wait for them: processes up, connections open."""
    prepare_sandbox(admin, 0)
    send(rows(n, "warm"))
    wait_accepted(admin, n, 120, stack, every=0.1)


def start_naive_workers(stack: Stack, count: int, concurrency: int) -> list[Proc]:
    procs = []
    for k in range(1, count + 1):
        args = [sys.executable, "-m", "celery", "-A", "naive_app", "worker", "-Q",
                naive_app.QUEUE, "-c", str(concurrency), "-n", f"naive{k}@%h",
                "--without-gossip", "--without-mingle", "-l", "INFO"]
        procs.append(Proc(f"naive{k}", args, stack.env(), stack.dir / f"naive{k}.log"))
    return procs


def bench_stack(res: Results, a: argparse.Namespace) -> None:
    """3: the queue, the direct limit and the naive design on one sandbox and one Redis."""
    slots = a.workers * a.concurrency
    latencies = [0.0, a.latency_ms] if a.latency_ms else [0.0]
    stack = Stack(workers=a.workers, concurrency=a.concurrency,
                  env=stack_env(slots, a.batch_size, max(latencies)))
    log(f"starting the stack: {a.workers} workers x {a.concurrency}")
    stack.start()
    naive_procs: list[Proc] = []
    try:
        admin = SandboxAdmin(stack.sandbox_url, timeout=30)
        settings = Settings.from_env(stack.env())
        producer = Producer(settings)
        warm(admin, lambda d: producer.send_bulk(SENDER, d), 2 * slots * a.batch_size, stack)
        for latency in latencies:
            queue_runs, direct_runs = [], []
            for k in range(a.repeat):  # interleaved, so drift hits both alike
                log(f"end to end, queue, {a.e2e} messages at {latency:g} ms ({k + 1}/{a.repeat})")
                queue_runs.append(run_e2e(stack, producer, admin, a.e2e, latency,
                                          f"q{latency:g}-{k}", slots, a.batch_size))
                log(f"  {queue_runs[-1].rate:,.0f} msgs/s")
                log(f"direct limit, {slots} threads, {a.e2e} messages at {latency:g} ms")
                direct_runs.append(run_direct(settings, admin, a.e2e, latency,
                                              f"d{latency:g}-{k}", slots, a.batch_size,
                                              stack_groups(stack)))
                log(f"  {direct_runs[-1].rate:,.0f} msgs/s")
            res.e2e[latency], res.direct[latency] = median(queue_runs), median(direct_runs)
        if "otp" not in a.skip:
            bench_otp(res, a, stack, producer, admin)
        if "monitor" not in a.skip:
            n = max(a.e2e // 5, 10 * a.batch_size)
            log(f"Redis requests by command: {n} messages at 0 ms with MONITOR on (untimed)")
            seen, calls = requests_by_command(stack, producer, admin, n, 0.0, slots,
                                              a.batch_size)
            res.requests = (seen, calls, n)
            log(f"  {sum(seen.values()) / max(calls, 1):.2f} requests per provider call")
        if a.profile:
            log(f"profiling the workers: one more queue run at {latencies[-1]:g} ms")
            with py_spy([w.pid for w in stack.workers], a.profile,
                        f"workers-{latencies[-1]:g}ms"):
                run_e2e(stack, producer, admin, a.e2e, latencies[-1], "prof", slots,
                        a.batch_size)
        threads = max(8, slots)
        log(f"sandbox's own rate: {a.sandbox_calls} calls from {threads} threads")
        prepare_sandbox(admin, 0)
        res.sandbox = sandbox_rate(stack.sandbox_url, stack.sandbox.pid if stack.sandbox else None,
                                   a.sandbox_calls, threads, a.batch_size)
        log(f"  {res.sandbox['msgs_per_s']:,.0f} msgs/s")

        # The naive design: the queue's workers and beat stop, naive workers take their slots.
        for proc in [stack.beat, *stack.workers]:
            if proc is not None:
                proc.stop()
        stack.workers, stack.beat = [], None
        log(f"naive design: {a.workers} workers x {a.concurrency}")
        naive_procs = start_naive_workers(stack, a.workers, a.concurrency)
        app = naive_app.make_app(stack.redis_url)
        warm(admin, lambda d: publish_naive(app, d), 4 * slots, stack)
        for latency in latencies:
            runs = []
            for k in range(a.repeat):
                log(f"end to end, naive, {a.naive} messages at {latency:g} ms "
                    f"({k + 1}/{a.repeat})")
                runs.append(run_naive(stack, app, naive_procs, admin, a.naive, latency,
                                      f"n{latency:g}-{k}", slots))
                log(f"  {runs[-1].rate:,.0f} msgs/s")
            res.naive[latency] = median(runs)
        app.close()
        producer.r.close()
    finally:
        for proc in naive_procs:
            proc.stop()
        stack.stop()


def bench_otp(res: Results, a: argparse.Namespace, stack: Stack, producer: Producer,
              admin: SandboxAdmin) -> None:
    """OTP latency at the latency: idle queue, then during a campaign of the same sender."""
    slots = a.workers * a.concurrency
    log(f"OTP latency at {a.latency_ms:g} ms: {a.otp_idle} one at a time on an idle queue")
    res.otp["idle"] = run_otp_idle(producer, admin, a.otp_idle, a.latency_ms, stack)
    log(f"  p50 {res.otp['idle'].pct(50):.1f} ms, p90 {res.otp['idle'].pct(90):.1f} ms")
    log(f"OTP latency at {a.latency_ms:g} ms during a campaign of {a.otp_campaign} "
        "(same sender)")
    res.otp["campaign"] = run_otp_campaign(producer, admin, a.otp_campaign, a.latency_ms,
                                           stack, slots, a.batch_size)
    o = res.otp["campaign"]
    log(f"  {len(o.ms)} OTPs: p50 {o.pct(50):.1f} ms, p90 {o.pct(90):.1f} ms; "
        f"campaign at {o.campaign_rate:,.0f} msgs/s")


def bench_scaling(res: Results, a: argparse.Namespace) -> None:
    """4: the end-to-end rate at 1, 2, 4 ... worker processes at the latency."""
    for count in a.scale_workers:
        slots = count * a.concurrency
        stack = Stack(workers=count, concurrency=a.concurrency,
                      env=stack_env(slots, a.batch_size, a.latency_ms))
        log(f"scaling: {count} workers x {a.concurrency}, {a.scaling} messages "
            f"at {a.latency_ms:g} ms")
        stack.start()
        try:
            admin = SandboxAdmin(stack.sandbox_url, timeout=30)
            producer = Producer(Settings.from_env(stack.env()))
            warm(admin, lambda d, p=producer: p.send_bulk(SENDER, d), 2 * slots * a.batch_size,
                 stack)
            run = repeat(a.repeat, lambda k, st=stack, p=producer, ad=admin, s=slots, c=count:
                         run_e2e(st, p, ad, a.scaling, a.latency_ms, f"s{c}-{k}", s,
                                 a.batch_size))
            run.name = f"queue @{a.latency_ms:g} ms, {count} x {a.concurrency} (scaling)"
            res.scaling.append((count, slots, run))
            log(f"  {run.rate:,.0f} msgs/s")
            producer.r.close()
        finally:
            stack.stop()


# -- the report -----------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    mem = ""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    with LocalRedis() as server:
        r = redis.Redis.from_url(server.url)
        redis_version = r.info("server")["redis_version"]
        r.close()
    try:
        import hiredis  # noqa: F401

        parser = "hiredis"
    except ImportError:
        parser = "pure Python (no hiredis)"
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem or "unknown",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "Redis": redis_version,
        "load average at start (1/5/15 min)": " / ".join(f"{x:.2f}" for x in os.getloadavg())
        if hasattr(os, "getloadavg") else "n/a",
        "celery / kombu / redis-py": f"{celery.__version__} / "
                                     f"{_version('kombu')} / {redis.__version__} ({parser})",
    }


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def _n(x: float, digits: int = 0) -> str:
    if x != x:  # nan
        return "n/a"
    return f"{x:,.{digits}f}"


def _ratio(x: float) -> str:
    if x != x:
        return "n/a"
    return f"{x:,.1f}x" if x >= 10 else f"{x:.2f}x"


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{x:.0%}"


def _met(ok: bool) -> str:
    return "**yes**" if ok else "**NO**"


def _table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _div(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _spread(run: Run) -> str:
    if len(run.rates) < 2:
        return _n(run.rate)
    return f"{_n(run.rate)} ({_n(min(run.rates))}-{_n(max(run.rates))})"


def targets(res: Results, a: argparse.Namespace) -> list[list[str]]:
    """[measurement, this design, baseline, ratio, target, met] rows."""
    lat = a.latency_ms
    out: list[list[str]] = []
    if res.enqueue and res.enqueue_naive:
        r = _div(res.enqueue.rate, res.enqueue_naive.rate)
        out.append(["1. enqueue rate, msgs/s (send_bulk vs apply_async per message)",
                    _spread(res.enqueue), _spread(res.enqueue_naive), _ratio(r),
                    f">= {T_ENQUEUE:g}x", _met(r >= T_ENQUEUE)])
        if res.enqueue_naive_events:
            r = _div(res.enqueue.rate, res.enqueue_naive_events.rate)
            out.append(["1b. same, naive with `task_send_sent_event=True` (as "
                        "dreams_sms.worker.app sets it)", _spread(res.enqueue),
                        _spread(res.enqueue_naive_events), _ratio(r), "(info)", "-"])
        mine, naive = res.enqueue.extra["bytes_per_msg"], res.enqueue_naive.extra["bytes_per_msg"]
        r = _div(mine, naive)
        out.append(["2. Redis bytes per queued message", _n(mine), _n(naive), _ratio(r),
                    f"<= {T_BYTES:g}x", _met(r <= T_BYTES)])
    for latency, run in res.e2e.items():
        d = res.direct.get(latency)
        if d:
            r = _div(run.rate, d.rate)
            if latency == 0:
                goal, ok = f"> {T_DIRECT_0:.0%} (before the redesign)", r > T_DIRECT_0
            else:
                goal, ok = f">= {T_DIRECT:.0%}", r >= T_DIRECT
            out.append([f"3. end to end @{latency:g} ms vs direct limit, msgs/s",
                        _spread(run), _spread(d), _pct(r), goal, _met(ok)])
    for latency, run in res.e2e.items():
        nv = res.naive.get(latency)
        if nv:
            r = _div(run.rate, nv.rate)
            target = latency == lat and lat > 0
            out.append([f"3. end to end @{latency:g} ms vs naive design, msgs/s",
                        _spread(run), _spread(nv), _ratio(r),
                        f">= {T_NAIVE_E2E:g}x" if target else "(info)",
                        _met(r >= T_NAIVE_E2E) if target else "-"])
    for latency, d in res.direct.items():
        nv = res.naive.get(latency)
        if nv:
            out.append([f"3. (ceiling) direct limit @{latency:g} ms vs naive design",
                        _spread(d), _spread(nv), _ratio(_div(d.rate, nv.rate)), "(info)", "-"])
    if res.scaling:
        first = res.scaling[0]
        for count, slots, run in res.scaling[1:]:
            r = _div(run.rate, first[2].rate)
            out.append([f"4. scaling @{lat:g} ms: {count} vs {first[0]} workers",
                        _spread(run), _spread(first[2]), _ratio(r),
                        f"(ideal {slots / first[1]:g}x)", "-"])
    if res.million:
        mb = res.million.extra["delta_mb"]
        out.append([f"5. Redis memory with {res.million.n:,} queued, MB", _n(mb, 1), "-", "-",
                    f"< {T_MILLION_MB:g} MB", _met(mb < T_MILLION_MB)])
        bpm = res.million.extra["bytes_per_msg"]
        naive = res.enqueue_naive.extra["bytes_per_msg"] if res.enqueue_naive else float("nan")
        out.append([f"5. bytes per message at {res.million.n:,}", _n(bpm), _n(naive),
                    _ratio(_div(bpm, naive)), "(info)", "-"])
    if res.sandbox:
        timed = [*res.e2e.values(), *res.direct.values(), *res.naive.values(),
                 *(r for _, _, r in res.scaling)]
        fastest = max((r.rate for r in timed), default=0.0)
        busiest = max((r.cores.get("sandbox", 0.0) for r in timed), default=0.0)
        ok = res.sandbox["msgs_per_s"] > fastest and busiest < SANDBOX_BUSY
        out.append([f"6. sandbox's own rate vs fastest run (its busiest: {busiest:.2f} cores)",
                    _n(res.sandbox["msgs_per_s"]), _n(fastest),
                    _ratio(_div(res.sandbox["msgs_per_s"], fastest)),
                    f"sandbox never the bottleneck (> fastest, < {SANDBOX_BUSY:g} core)",
                    _met(ok)])
    out += new_targets(res)
    return out


def _otp_call(o: Otp) -> str:
    return f"{percentile(o.call_ms, 50):.1f} / {percentile(o.call_ms, 90):.1f}"


def new_targets(res: Results) -> list[list[str]]:
    """Rows 7-9: OTP latency, Redis round trips per batch, worker CPU per message."""
    out: list[list[str]] = []
    idle, busy = res.otp.get("idle"), res.otp.get("campaign")
    if idle:
        limit = idle.latency_ms + T_OTP_IDLE_MS
        out.append([f"7. OTP latency, idle queue, {len(idle.ms)} one at a time: p50 / p90 ms "
                    "after send() returned (from the call)",
                    f"{idle.pct(50):.1f} / {idle.pct(90):.1f} ({_otp_call(idle)})", "-", "-",
                    f"p90 <= {limit:g} ms (latency + {T_OTP_IDLE_MS:g})",
                    _met(idle.pct(90) <= limit)])
    if busy:
        limit = 2 * busy.latency_ms + T_OTP_BUSY_MS
        out.append([f"7. OTP latency during a campaign of {busy.campaign:,} (same sender), "
                    f"{len(busy.ms)} OTPs: p50 / p90 ms after send() returned (from the call)",
                    f"{busy.pct(50):.1f} / {busy.pct(90):.1f} ({_otp_call(busy)})", "-", "-",
                    f"p90 <= {limit:g} ms (2 x latency + {T_OTP_BUSY_MS:g})",
                    _met(busy.pct(90) <= limit)])
    for latency, run in res.e2e.items():
        reads, batches = run.extra.get("redis_reads"), run.extra.get("batches")
        if reads is None or not batches:
            continue
        per = _div(reads, batches)
        out.append([f"8. Redis round trips per provider batch @{latency:g} ms "
                    f"({_n(reads)} reads / {_n(batches)} batches, all clients)",
                    _n(per, 2), "-", "-", f"<= {T_ROUND_TRIPS:g} (about 9 before the redesign)",
                    _met(per <= T_ROUND_TRIPS)])
    q, d = res.e2e.get(0.0), res.direct.get(0.0)
    if q and d:
        mine, theirs = q.cpu_us_per_msg("workers"), d.cpu_us_per_msg("bench")
        out.append(["9. sender-side CPU per message @0 ms, us: workers vs direct client threads",
                    _n(mine), _n(theirs), _ratio(_div(mine, theirs)), "(info)", "-"])
    return out


def render(res: Results, a: argparse.Namespace, command: str, elapsed: float) -> str:
    lat = a.latency_ms
    slots = a.workers * a.concurrency
    main_md = _table(["measurement", "this design", "baseline", "ratio", "target", "met"],
                     targets(res, a))

    scaling_md = "(not run)"
    if res.scaling:
        _, first_slots, first = res.scaling[0]
        body = []
        for count, s, run in res.scaling:
            ideal = s * a.batch_size / (lat / 1000.0) if lat else float("nan")
            body.append([str(count), f"{count} x {a.concurrency} = {s}", _spread(run),
                         _ratio(_div(run.rate, first.rate)),
                         _pct(_div(run.rate / s, first.rate / first_slots)), _n(ideal),
                         _pct(_div(run.rate, ideal)), _n(run.cores.get("workers", 0), 2),
                         _n(sum(run.cores.values()), 2)])
        scaling_md = _table(["workers", "slots", "msgs/s", "speed-up", "per-slot efficiency",
                             f"latency bound (slots x {a.batch_size} / latency)", "of bound",
                             "worker cores", "all cores"], body)

    runs: list[Run] = [*res.e2e.values(), *res.direct.values(), *res.naive.values(),
                       *(r for _, _, r in res.scaling)]
    cpu_body = []
    for run in runs:
        c = run.cores
        sender = "bench" if run.kind == "direct" else "workers"
        cpu_body.append([run.name, _n(run.n), _n(run.seconds, 2), _spread(run),
                         _n(c.get("bench", 0), 2), _n(c.get("workers", 0), 2),
                         _n(c.get("sandbox", 0), 2), _n(c.get("redis", 0), 2),
                         _n(c.get("beat", 0), 2), _n(sum(c.values()), 2),
                         _n(run.cpu_us_per_msg(sender)), _n(run.cpu_us_per_msg())])
    if res.sandbox:
        sb = res.sandbox
        cpu_body.append([f"sandbox alone @0 ms ({int(sb['threads'])} threads, pre-encoded)",
                         _n(sb["calls"] * sb["recipients"]), _n(sb["seconds"], 2),
                         _n(sb["msgs_per_s"]), "-", "-", _n(sb["cores"], 2), "-", "-", "-",
                         "-", "-"])
    cpu_md = _table(["run", "messages", "seconds", "msgs/s", "bench process", "workers",
                     "sandbox", "redis", "beat", "total cores",
                     "sender-side CPU us/msg", "all CPU us/msg"], cpu_body)

    api_md = "(not run)"
    if res.api_bulk and res.api_bulk_base and res.api_single:
        b, base, s = res.api_bulk, res.api_bulk_base, res.api_single
        r = _div(b.rate, base.rate)
        api_md = _table(["measurement", "HTTP API", "baseline", "ratio", "target", "met"], [
            [f"NDJSON campaign of {_n(b.n)} rows, one POST /v1/campaigns "
             f"({b.extra.get('body_mb', 0):.1f} MB), msgs/s vs `send_bulk` of the same rows",
             _spread(b), _spread(base), _pct(r), f">= {T_API_BULK:.0%}", _met(r >= T_API_BULK)],
            [f"{len(s.ms):,} single POST /v1/messages at {s.campaign_rate:.0f}/s: "
             "p50 / p90 / p99 / max ms from each one's due time",
             f"{s.pct(50):.1f} / {s.pct(90):.1f} / {s.pct(99):.1f} / {max(s.ms):.1f}",
             "-", "-", "(info)", "-"],
            ["API process CPU during the campaign, cores",
             _n(b.cores.get("api", 0), 2), "-", "-", "(info)", "-"],
        ])

    repl_md = "(not run)"
    if res.replicated:
        on, off = res.replicated[1], res.replicated[0]
        r = _div(on.rate, off.rate)
        repl_md = _table(["measurement", "lease confirmed on a replica", "not confirmed",
                          "ratio", "target", "met"], [
            [f"end to end @{lat:g} ms, {_n(on.n)} messages, one master + one replica "
             "(both runs), msgs/s", _spread(on), _spread(off), _pct(r),
             f">= {1 - T_REPLICATED_COST:.0%}", _met(r >= 1 - T_REPLICATED_COST)],
            ["added per provider batch (WAIT in the take's round trip), ms",
             _n(1000 * (on.seconds / max(on.extra.get("batches", 1), 1)
                        - off.seconds / max(off.extra.get("batches", 1), 1)) * slots, 2),
             "-", "-", "(info)", "-"],
        ])

    otp_md = "(not run)"
    if res.otp:
        body = []
        for o in res.otp.values():
            what = ("idle queue, one at a time, "
                    f"{OTP_PAUSE * 1000:g} ms apart after each was accepted"
                    if o.condition == "idle" else
                    f"during a campaign of {o.campaign:,} of the same sender, about one "
                    f"latency apart (jittered); campaign drained at {o.campaign_rate:,.0f} msgs/s")
            call, own = o.call_ms, o.send_ms()
            body.append([what, str(len(o.ms)), _n(o.pct(50), 1), _n(o.pct(90), 1),
                         _n(o.pct(99), 1), _n(max(o.ms, default=float("nan")), 1),
                         f"{_n(percentile(call, 50), 1)} / {_n(percentile(call, 90), 1)}",
                         f"{_n(percentile(own, 50), 1)} / {_n(percentile(own, 90), 1)}",
                         _n(o.seconds, 1)])
        otp_md = _table(["condition", "OTPs", "p50 ms", "p90 ms", "p99 ms", "max ms",
                         "from the send call: p50 / p90 ms", "send() itself: p50 / p90 ms",
                         "seconds"], body)

    traffic_md = "(not run)"
    counted = [(lat, run) for lat, run in res.e2e.items() if run.extra.get("batches")]
    if counted:
        traffic_md = _table(
            ["queue run", "messages", "provider calls", "Redis reads", "reads per call"],
            [[run.name, _n(run.n), _n(run.extra["batches"]), _n(run.extra["redis_reads"]),
              f'**{_n(_div(run.extra["redis_reads"], run.extra["batches"]), 2)}**']
             for _, run in counted])
    requests_md = ""
    if res.requests:
        seen, calls, n = res.requests
        total = sum(seen.values())
        body = [["**all**", _n(total), f"**{_n(_div(total, calls), 2)}**"]]
        body += [[f"`{name}`", _n(count), _n(_div(count, calls), 2)]
                 for name, count in seen.most_common(25)]
        requests_md = (
            f"What the clients sent, by command, in one more (untimed) queue run of {n:,} "
            f"messages at 0 ms ({calls:,} provider calls) with Redis MONITOR on: requests, "
            "not reads (a pipeline is one read), commands run inside scripts left out, "
            "`EVALSHA` by script.\n\n"
            + _table(["request", "count", "per provider call"], body))

    notes = []
    if res.enqueue and res.enqueue_naive:
        e, nv = res.enqueue, res.enqueue_naive
        notes.append(f"enqueue: {e.n:,} rows via `send_bulk` in {e.seconds:.2f} s; "
                     f"naive: {nv.n:,} `apply_async` in {nv.seconds:.2f} s")
    if res.million:
        m = res.million
        notes.append(f"memory at scale: {m.n:,} rows generated on the fly and enqueued in "
                     f"{m.seconds:.1f} s ({m.rate:,.0f} msgs/s); Redis used_memory "
                     f"{m.extra['used_memory_mb']:.1f} MB in all (RSS {m.extra['rss_mb']:.1f} MB)"
                     f", {m.extra['queued_in_redis']:,.0f} stream entries")
    if res.sandbox:
        notes.append(f"sandbox alone: {res.sandbox['cpu_us_per_call']:,.0f} us of its CPU per "
                     f"sendsms_multi call of {int(res.sandbox['recipients'])}")
    machine_md = "\n".join(f"- **{k}**: {v}" for k, v in res.machine.items())
    notes_md = "\n".join(f"- {s}" for s in notes)
    example = TEXT.format(tag="q0", i=1)
    return f"""# Benchmarks

Written by `bench/benchmark.py` ({elapsed:.0f} s, {time.strftime('%Y-%m-%d %H:%M %Z')}):

```
{command}
```

## Machine

{machine_md}

## Set-up

- All on loopback: private `redis-server`s, the sandbox in its own process
  (`python -m dreams_sms.sandbox --admin`), real `celery worker` processes (prefork).
- Queue and naive design: {a.workers} worker processes x concurrency {a.concurrency}
  = {slots} slots (`Stack(workers={a.workers}, concurrency={a.concurrency})`); the direct
  limit: {slots} threads, each with its own `DreamsClient`, looping over `send_multi`.
- Batch size {a.batch_size}; `DREAMS_BATCH_WAIT=0`; `DREAMS_SENDER_PARALLELISM={slots}`;
  one sender (`{SENDER}`) in every design; beat running for the queue.
- Texts like `{example}` ({len(example)} characters); numbers `96650XXXXXXX`.
- End to end = from the first enqueue to the sandbox having accepted all N
  (`stats()["accepted"]`, polled every 20 ms), stack warm; every run checks that the
  sandbox accepted exactly N, no duplicates. Latency is the sandbox's `latency_ms`.
- Sizes: enqueue {a.enqueue:,} (naive {a.naive_enqueue:,}); end to end {a.e2e:,}
  (naive {a.naive:,}); scaling {a.scaling:,} per point; memory at scale {a.million:,};
  OTPs {a.otp_idle:,} on an idle queue, and a campaign of {a.otp_campaign:,} for OTPs
  during a campaign (on the end-to-end stack, at {lat:g} ms).
  Timed runs are repeated {a.repeat}x: the median is shown, (min-max) beside it.
- Naive design (`bench/naive_app.py`): one Celery task per message, each one `sendsms`
  call; Celery defaults plus `task_ignore_result=True`; enqueued with `apply_async`
  in a loop over one reused producer.
{notes_md}

## Results

{main_md}

## OTP latency at {lat:g} ms

From `send(..., priority="high")` returning to the sandbox's record of accepting the
message (its `time` field; same host clock). The sandbox records a message when the
request arrives and answers `latency_ms` later, so this is the time the message waited
in the queue and in the worker before its provider call went out. A negative figure
means the sandbox had the message before `send()` returned: on an idle queue `send()`
starts the sender's drain chains (one Celery task each) before it returns, and the
first chain can reach the sandbox while the others are still being published. The
time from the call, and the call's own duration, are beside it.

{otp_md}

## HTTP API

`dreams-sms serve` (one uvicorn process) on its own private Redis, no workers, the
client in this process. The campaign body is streamed into `send_bulk` as it
arrives (CSV/NDJSON parsing, validation, then the same pipelined chunks); the
baseline is `send_bulk` of the same rows from an iterator, in the same run.
Single messages: one request each (key check, rate limit, the enqueue script, the
drain kick), sent on a fixed schedule from 16 client threads.

{api_md}

## Replicated lease (Redis with a replica)

One master with one replica attached (both with AOF), two stacks on it side by
side (a database each, separate sandboxes at the same latency), runs
interleaved: workers that `WAIT` for the replica to hold each lease before the
provider call (`DREAMS_REPLICA_ACKS=1`, what a `sentinel://` URL does by
default), and workers that do not (`DREAMS_REPLICA_ACKS=0`). The WAIT rides in
the take script's round trip (one pipeline), so what it adds is the replica's
acknowledgement time.

{repl_md}

## Redis traffic per provider batch

Over each end-to-end queue run (the median one), from the first enqueue until every
drain chain had ended: INFO `total_reads_processed` (requests read off a socket: a
pipeline's commands often arrive in one), all clients together (the producer's
enqueue, workers, Celery, beat), divided by the sandbox's count of provider calls.

{traffic_md}

{requests_md}

## Scaling at {lat:g} ms

{scaling_md}

## CPU during each run

Cores = CPU seconds of the process group / wall seconds ({os.cpu_count()} cores in all).
The bench process enqueues (queue, naive) or is the client (direct). Sender-side CPU
is the workers' for the queue and the naive design, the client threads' for direct.

{cpu_md}
"""


def chart(res: Results, path: Path, a: argparse.Namespace) -> Path | None:
    """A PNG of the scaling curve, when matplotlib is installed."""
    if not res.scaling:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    xs = [count for count, _, _ in res.scaling]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.plot(xs, [run.rate for _, _, run in res.scaling], marker="o", label="end to end")
    if a.latency_ms:
        ax.plot(xs, [s * a.batch_size / (a.latency_ms / 1000.0) for _, s, _ in res.scaling],
                linestyle="--", label="latency bound")
    ax.set_xlabel(f"worker processes (x{a.concurrency} slots)")
    ax.set_ylabel("messages/s")
    ax.set_title(f"Scaling at {a.latency_ms:g} ms latency")
    ax.set_xticks(xs)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# -- main ---------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, no repeats: a smoke run")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md",
                   help="markdown report (default: BENCHMARKS.md at the repo root)")
    p.add_argument("--chart", type=Path, default=None,
                   help="scaling chart PNG, written when matplotlib is installed "
                        "(default: next to --output)")
    p.add_argument("--latency-ms", type=float, default=50.0, help="sandbox latency (50)")
    p.add_argument("--batch-size", type=int, default=100, help="DREAMS_BATCH_SIZE (100)")
    p.add_argument("--workers", type=int, help="worker processes (2; quick 1)")
    p.add_argument("--concurrency", type=int, help="slots per worker process (4; quick 2)")
    p.add_argument("--enqueue", type=int, help="messages for the enqueue rate (50,000)")
    p.add_argument("--naive-enqueue", type=int, help="apply_async calls for the baseline (10,000)")
    p.add_argument("--e2e", type=int, help="messages per end-to-end and direct run (50,000)")
    p.add_argument("--naive", type=int, help="messages per naive end-to-end run (1,000)")
    p.add_argument("--scaling", type=int, help="messages per scaling point (20,000)")
    p.add_argument("--scale-workers", help="worker counts for scaling (1,2,4)")
    p.add_argument("--million", type=int, help="messages for memory at scale (1,000,000)")
    p.add_argument("--sandbox-calls", type=int, help="calls for the sandbox's own rate (1,500)")
    p.add_argument("--otp-idle", type=int, help="OTPs sent one at a time on an idle queue (100)")
    p.add_argument("--otp-campaign", type=int,
                   help="campaign drained while OTPs of the same sender go in (100,000)")
    p.add_argument("--api-rows", type=int, help="rows of the HTTP NDJSON campaign (100,000)")
    p.add_argument("--api-singles", type=int, help="single POST /v1/messages (3,000)")
    p.add_argument("--api-rate", type=float, help="their fixed rate, per second (200)")
    p.add_argument("--repeat", type=int, help="repetitions of each timed run, median kept (3)")
    p.add_argument("--skip", default="",
                   help="comma list of parts to skip: enqueue,e2e,otp,monitor,scaling,"
                        "million,api,replicated (otp and monitor run on the e2e stack)")
    p.add_argument("--profile", type=Path, default=None, metavar="DIR",
                   help="also profile the producer (cProfile) and the workers (py-spy, if "
                        "installed) in extra, untimed runs; write the profiles to DIR")
    a = p.parse_args(argv)
    for key, value in (QUICK if a.quick else FULL).items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    a.scale_workers = [int(x) for x in str(a.scale_workers).split(",") if x.strip()]
    a.skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    unknown = a.skip - {"enqueue", "e2e", "otp", "monitor", "scaling", "million", "api",
                        "replicated"}
    if unknown:
        p.error(f"--skip: unknown parts {sorted(unknown)}")
    if not 1 <= a.batch_size <= 1000:
        p.error("--batch-size must be 1-1000")
    if a.latency_ms < 0 or a.repeat < 1 or a.workers < 1 or a.concurrency < 1:
        p.error("--latency-ms must be >= 0; --repeat, --workers, --concurrency >= 1")
    if a.otp_idle < 1 or a.otp_campaign < 1:
        p.error("--otp-idle and --otp-campaign must be >= 1")
    return a


def _stop_on_term(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # so the stacks' `finally` blocks stop their processes


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_on_term)
    script = Path(__file__).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    command = "python " + " ".join(shlex.quote(str(x)) for x in [
        shown, *(sys.argv[1:] if argv is None else argv)])
    if a.profile:
        a.profile.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    res = Results(machine=machine())
    if "enqueue" not in a.skip:
        log(f"enqueue: producer send_bulk, {a.enqueue} messages x{a.repeat}")
        res.enqueue = repeat(a.repeat, lambda k: bench_producer_enqueue(a.enqueue, tag=f"e{k}"))
        log(f"  {res.enqueue.rate:,.0f} msgs/s, {res.enqueue.extra['bytes_per_msg']:.1f} B/msg")
        log(f"enqueue: naive apply_async, {a.naive_enqueue} messages x{a.repeat}")
        res.enqueue_naive = repeat(a.repeat, lambda k: bench_naive_enqueue(a.naive_enqueue))
        log(f"  {res.enqueue_naive.rate:,.0f} msgs/s, "
            f"{res.enqueue_naive.extra['bytes_per_msg']:.1f} B/msg")
        res.enqueue_naive_events = repeat(
            a.repeat, lambda k: bench_naive_enqueue(a.naive_enqueue, sent_event=True))
        log(f"  with sent events: {res.enqueue_naive_events.rate:,.0f} msgs/s")
        if a.profile:
            bench_producer_enqueue(a.enqueue, tag="prof", profile=a.profile)
    if "e2e" not in a.skip:
        bench_stack(res, a)
    if "scaling" not in a.skip:
        bench_scaling(res, a)
    if "api" not in a.skip:
        bench_api(res, a)
    if "replicated" not in a.skip:
        bench_replicated(res, a)
    if "million" not in a.skip:
        log(f"memory at scale: {a.million} messages, no workers")
        res.million = bench_producer_enqueue(a.million, streamed=True, tag="m")
        log(f"  {res.million.extra['delta_mb']:.1f} MB, "
            f"{res.million.extra['bytes_per_msg']:.1f} bytes/msg")
    text = render(res, a, command, time.perf_counter() - started)
    png = chart(res, a.chart or a.output.with_name(a.output.stem + "-scaling.png"), a)
    if png:
        text += f"\n![scaling at {a.latency_ms:g} ms]({os.path.relpath(png, a.output.parent)})\n"
    elif res.scaling:
        text += "\n(No scaling chart: matplotlib is not installed.)\n"
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(text, encoding="utf-8")
    print(text)
    log(f"wrote {a.output}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
