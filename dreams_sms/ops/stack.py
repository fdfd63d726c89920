"""Start and stop a whole private stack: Redis, sandbox, workers, beat, Flower, the API.

Used by `dreams-sms demo` and by the end-to-end and chaos tests. Every process
gets its own session so a stop (or Ctrl-C) leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from dreams_sms.ops.localredis import LocalRedis, free_port

DEMO_USER = "demo"
DEMO_SECRET = "demo-secret"


class Proc:
    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log: Path):
        self.name = name
        self.args = args
        self.log = log
        self._fh = open(log, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.p = subprocess.Popen(args, env=dict(env), stdout=self._fh, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.p.pid, sig)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        # the group may still hold children (a prefork pool): make sure they go too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.p.pid, signal.SIGKILL)
        self._fh.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class Stack:
    def __init__(
        self,
        *,
        workers: int = 1,
        concurrency: int = 2,
        beat: bool = True,
        flower: bool = False,
        flower_auth: str = "admin:admin",
        metrics: bool = False,
        api: bool = False,
        redis_url: str | None = None,
        redis_aof: bool = False,
        redis_password: str | None = None,
        redis_tls: bool = False,
        sandbox: bool = True,
        sandbox_args: list[str] | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | Path | None = None,
    ):
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="dreams-stack-")
        self.dir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.dir.mkdir(parents=True, exist_ok=True)
        self.n_workers = workers
        self.concurrency = concurrency
        self.want_beat = beat
        self.want_flower = flower
        self.flower_auth = flower_auth
        self.want_metrics = metrics
        self.metrics: Proc | None = None
        self.metrics_port = free_port()
        self.want_api = api
        self.api: Proc | None = None
        self.api_port = free_port()
        self.want_sandbox = sandbox
        self.sandbox_args = sandbox_args or []
        self.extra_env = dict(env or {})
        self.redis: LocalRedis | None = None
        self.redis_url = redis_url
        self.redis_aof = redis_aof
        self.redis_password = redis_password
        self.redis_tls = redis_tls
        self.sandbox: Proc | None = None
        self.sandbox_port = free_port()
        self.workers: list[Proc] = []
        self.beat: Proc | None = None
        self.flower: Proc | None = None
        self.flower_port = free_port()
        self._seq = 0
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- addresses ---------------------------------------------------------------
    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def flower_url(self) -> str:
        return f"http://127.0.0.1:{self.flower_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DREAMS_", "CELERY"))}
        env.update({
            "REDIS_URL": self.redis_url or "",
            "PYTHONUNBUFFERED": "1",
        })
        if self.want_sandbox:
            env.update({
                "DREAMS_BASE_URL": f"{self.sandbox_url}/index.php/api",
                "DREAMS_OAUTH_URL": f"{self.sandbox_url}/token",
                "DREAMS_USER": DEMO_USER,
                "DREAMS_SECRET_KEY": DEMO_SECRET,
                "DREAMS_ON_UNKNOWN": "reconcile",
                "DREAMS_RECONCILE_URL": self.sandbox_url,
            })
        env.update(self.extra_env)
        return env

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> Stack:
        try:
            if self.redis_url is None:
                (self.dir / "redis").mkdir(exist_ok=True)
                self.redis = LocalRedis(appendonly=self.redis_aof, directory=self.dir / "redis",
                                        password=self.redis_password, tls=self.redis_tls)
                self.redis_url = self.redis.start().url
            if self.want_sandbox:
                self.start_sandbox()
            for _ in range(self.n_workers):
                self.start_worker()
            if self.want_beat:
                self.start_beat()
            if self.want_flower:
                self.start_flower()
            if self.want_metrics:
                self.start_metrics()
            if self.want_api:
                self.start_api()
            self._watcher = threading.Thread(target=self._watch, name="stack-watch", daemon=True)
            self._watcher.start()
        except BaseException:
            self.stop()
            raise
        return self

    def start_sandbox(self) -> None:
        args = [sys.executable, "-m", "dreams_sms.sandbox", "--host", "127.0.0.1",
                "--port", str(self.sandbox_port), "--admin",
                "--journal", str(self.dir / "sandbox-journal.jsonl"), *self.sandbox_args]
        self.sandbox = Proc("sandbox", args, self.env(), self.dir / "sandbox.log")
        _wait_http(f"{self.sandbox_url}/_sandbox/state", self.sandbox)

    def stop_sandbox(self) -> None:
        if self.sandbox:
            self.sandbox.stop()

    def start_worker(self, concurrency: int | None = None) -> Proc:
        self._seq += 1
        name = f"w{self._seq}@%h"
        args = [sys.executable, "-m", "celery", "-A", "dreams_sms.worker", "worker",
                "-Q", "dreams.send,dreams.ops", "-c", str(concurrency or self.concurrency),
                "-n", name, "--without-gossip", "--without-mingle", "-l", "INFO"]
        proc = Proc(f"worker{self._seq}", args, self.env(), self.dir / f"worker{self._seq}.log")
        self.workers.append(proc)
        return proc

    def start_beat(self) -> None:
        args = [sys.executable, "-m", "celery", "-A", "dreams_sms.worker", "beat", "-l", "INFO",
                "--schedule", str(self.dir / "beat-schedule")]
        self.beat = Proc("beat", args, self.env(), self.dir / "beat.log")

    def start_flower(self) -> None:
        args = [sys.executable, "-m", "dreams_sms", "flower", "--port", str(self.flower_port),
                "--address", "127.0.0.1"]
        env = self.env()
        env["DREAMS_FLOWER_AUTH"] = self.flower_auth
        self.flower = Proc("flower", args, env, self.dir / "flower.log")
        _wait_http(f"{self.flower_url}/healthcheck", self.flower, timeout=60)

    def start_metrics(self) -> None:
        args = [sys.executable, "-m", "dreams_sms", "metrics", "--port",
                str(self.metrics_port), "--address", "127.0.0.1"]
        self.metrics = Proc("metrics", args, self.env(), self.dir / "metrics.log")
        _wait_http(self.metrics_url, self.metrics)

    def start_api(self) -> None:
        """`dreams-sms serve`, as deployed (its own process, uvicorn, access log on)."""
        args = [sys.executable, "-m", "dreams_sms", "serve", "--address", "127.0.0.1",
                "--port", str(self.api_port)]
        self.api = Proc("api", args, self.env(), self.dir / "api.log")
        _wait_http(f"{self.api_url}/healthz", self.api)

    def _watch(self) -> None:
        """Restart beat if it exits, as a process supervisor (or compose) would.

        celery-redbeat's beat exits when it loses Redis; the schedule and its
        lock live in Redis, so a restarted beat simply carries on.
        """
        while not self._stopping.wait(1.0):
            if self.beat is not None and not self.beat.alive():
                with open(self.dir / "beat.log", "a") as fh:
                    fh.write("\n[stack] beat exited; restarting it\n")
                self.beat.stop()
                self.start_beat()

    def kill_worker(self, index: int = 0) -> None:
        self.workers[index].kill()

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        for proc in [self.api, self.metrics, self.flower, self.beat, *self.workers,
                     self.sandbox]:
            if proc is not None:
                proc.stop()
        if self.redis is not None:
            self.redis.close()
            self.redis = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def logs(self) -> str:
        out = []
        for path in sorted(self.dir.glob("*.log")):
            out.append(f"== {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(out)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_http(url: str, proc: Proc, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited at start; see {proc.log}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer at {url} within {timeout:.0f}s")
