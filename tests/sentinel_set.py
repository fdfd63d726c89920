"""A Redis master, a replica behind a relay that can be frozen, and three sentinels.

All real `redis-server` processes on loopback. On loopback a paused replica
loses nothing (the kernel buffers the replication stream), so the replica
reaches its master through `Relay`: freezing it holds back every write the
master makes, and killing the master then loses them, as a slow link would.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis

from dreams_sms.ops.localredis import LocalRedis, free_port

MASTER = "dreams-main"


class Relay:
    """A TCP relay from a local port to `target`; `freeze()` stops moving bytes."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self._open = threading.Event()
        self._open.set()
        self._closed = False
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="relay-accept").start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                down, _ = self._server.accept()
                up = socket.create_connection(self.target)
            except OSError:
                if self._closed:
                    return
                continue
            self._sockets += [down, up]
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                self._open.wait()
                data = src.recv(65536)
                if not data:
                    break
                self._open.wait()  # frozen after reading: hold this too
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def freeze(self) -> None:
        self._open.clear()

    def thaw(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self._open.set()
        self._server.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()


class SentinelSet:
    """master -> relay -> replica, watched by three sentinels (quorum 2)."""

    def __init__(self, *, password: str = "", sentinel_password: str = ""):
        self._tmp = tempfile.TemporaryDirectory(prefix="dreams-sentinel-")
        self.dir = Path(self._tmp.name)
        self.password = password
        self.sentinel_password = sentinel_password
        self.master = self._node("master", [])
        self.relay: Relay | None = None
        self.replica: LocalRedis | None = None
        self.sentinels: list[subprocess.Popen[bytes]] = []
        self.sentinel_ports = [free_port() for _ in range(3)]

    def _node(self, name: str, extra: list[str]) -> LocalRedis:
        (self.dir / name).mkdir()
        return LocalRedis(directory=self.dir / name, password=self.password or None,
                          extra=extra)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"sentinel://{hosts}/{MASTER}/0"

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": self.url, "REDIS_PASSWORD": self.password,
                "REDIS_SENTINEL_PASSWORD": self.sentinel_password}

    def start(self) -> SentinelSet:
        self.master.start()
        self.relay = Relay(self.master.port)
        self.replica = self._node("replica", ["--replicaof", "127.0.0.1", str(self.relay.port)])
        self.replica.start()
        self._wait(lambda: self.client(self.replica).info("replication")
                   .get("master_link_status") == "up", "the replica to sync")
        for i, port in enumerate(self.sentinel_ports):
            self.sentinels.append(self._sentinel(i, port))
        self._wait(self._sentinels_ready, "the sentinels to see the replica and each other")
        return self

    def _sentinel(self, i: int, port: int) -> subprocess.Popen[bytes]:
        d = self.dir / f"sentinel{i}"
        d.mkdir()
        conf = [f"port {port}", "bind 127.0.0.1", f"dir {d}", f"logfile {d / 'sentinel.log'}",
                "sentinel resolve-hostnames no",
                f"sentinel monitor {MASTER} 127.0.0.1 {self.master.port} 2",
                f"sentinel down-after-milliseconds {MASTER} 1000",
                f"sentinel failover-timeout {MASTER} 4000",
                f"sentinel parallel-syncs {MASTER} 1"]
        if self.password:
            conf.append(f"sentinel auth-pass {MASTER} {self.password}")
        if self.sentinel_password:
            conf += [f"requirepass {self.sentinel_password}",
                     f"sentinel sentinel-pass {self.sentinel_password}"]
        (d / "sentinel.conf").write_text("\n".join(conf) + "\n")
        return subprocess.Popen([self.master.binary, str(d / "sentinel.conf"), "--sentinel"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    def sentinel_client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=self.sentinel_password or None,
                           decode_responses=True, socket_timeout=1)

    def client(self, node: LocalRedis | None) -> redis.Redis:
        assert node is not None
        return redis.Redis(port=node.port, password=self.password or None,
                           decode_responses=True, socket_timeout=2)

    def _sentinels_ready(self) -> bool:
        try:
            for port in self.sentinel_ports:
                s = self.sentinel_client(port)
                info = s.sentinel_master(MASTER)
                if int(info["num-slaves"]) < 1 or int(info["num-other-sentinels"]) < 2:
                    return False
        except (redis.RedisError, KeyError):
            return False
        return True

    def master_port(self) -> int:
        """Where the sentinels say the master is now."""
        s = self.sentinel_client(self.sentinel_ports[0])
        return int(s.sentinel_get_master_addr_by_name(MASTER)[1])

    def kill_master(self) -> None:
        """SIGKILL: no goodbye to the replica or the sentinels."""
        self.master.stop(kill=True)

    def wait_promoted(self, timeout: float = 30) -> None:
        assert self.replica is not None
        replica = self.replica
        self._wait(lambda: self.master_port() == replica.port
                   and self.client(replica).info("replication")["role"] == "master",
                   "Sentinel to promote the replica", timeout)

    @staticmethod
    def _wait(cond: object, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if cond():  # type: ignore[operator]
                    return
            except (redis.RedisError, OSError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def close(self) -> None:
        for p in self.sentinels:
            p.kill()
            p.wait()
        if self.relay is not None:
            self.relay.close()
        for node in (self.replica, self.master):
            if node is not None:
                node.close()
        self._tmp.cleanup()
