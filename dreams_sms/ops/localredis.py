"""A private, throw-away redis-server for the demo and the tests.

Starting our own server on a free loopback port means a demo or a test run
never touches a Redis it did not start.
"""

from __future__ import annotations

import functools
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from dreams_sms.errors import ConfigError

INSTALL_HINT = (
    "redis-server was not found: install Redis 7 or newer (`./scripts/setup` does, on "
    "Debian/Ubuntu; or `apt-get install -y redis-server`, `brew install redis`)"
)

#: XAUTOCLAIM's reply gained its third element (deleted ids) in 7.0.
MIN_VERSION = (7, 0)


@functools.lru_cache(maxsize=4)
def server_version(binary: str) -> tuple[int, int] | None:
    """(major, minor) of a redis-server binary, or None when it cannot tell."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"v=(\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2])) if m else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]  # (host, port) for AF_INET
        return port


class LocalRedis:
    """One redis-server process; `appendonly=True` for crash/restart tests."""

    def __init__(self, *, port: int | None = None, appendonly: bool = False,
                 directory: str | Path | None = None, password: str | None = None,
                 tls: bool = False, extra: Sequence[str] = ()):
        binary = shutil.which("redis-server")
        if binary is None:
            raise ConfigError(INSTALL_HINT)
        self.binary = binary
        version = server_version(self.binary)
        if version is not None and version < MIN_VERSION:
            raise ConfigError(f"redis-server {MIN_VERSION[0]}.{MIN_VERSION[1]} or newer is "
                              f"needed; {self.binary} is {version[0]}.{version[1]}")
        self.port = port or free_port()
        self.appendonly = appendonly
        self.password = password
        self.tls = tls
        self.extra = list(extra)  # more server options, e.g. --replicaof HOST PORT
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="dreams-redis-")
        self.dir = Path(directory or self._tmp.name)  # type: ignore[union-attr]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return (f"rediss://{auth}127.0.0.1:{self.port}/0"
                    f"?ssl_cert_reqs=required&ssl_ca_certs={self.dir / 'ca.crt'}")
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> LocalRedis:
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.dir), "--save", "", "--daemonize", "no",
            "--maxmemory-policy", "noeviction", "--protected-mode", "yes",
            "--logfile", str(self.dir / "redis.log"),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
        ]
        if self.password:
            args += ["--requirepass", self.password, "--masterauth", self.password]
        args += self.extra
        if self.tls:
            _certificates(self.dir)
            args[args.index("--port") + 1] = "0"
            args += ["--tls-port", str(self.port), "--tls-cert-file", str(self.dir / "server.crt"),
                     "--tls-key-file", str(self.dir / "server.key"),
                     "--tls-ca-cert-file", str(self.dir / "ca.crt"), "--tls-auth-clients", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited at start; see {self.dir / 'redis.log'}")
            if self.tls:
                if self._tls_ping():
                    return self
                time.sleep(0.05)
                continue
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def _tls_ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _certificates(directory: Path) -> None:
    """A throw-away CA and a server certificate for 127.0.0.1 (openssl)."""
    if (directory / "server.crt").exists():
        return
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ConfigError("openssl is needed to make certificates for a TLS test Redis")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=dreams-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
