"""The Docker files, checked by reading them: Docker cannot run here.

Parses the Dockerfile (a small instruction parser), docker-compose.yml (PyYAML),
deploy/nginx.conf (run by nginx itself when it is installed), .dockerignore,
.env.example and requirements.lock, and checks them against the package: the
commands exist, the modules import, the lock pins what pyproject asks for, the
proxy hides Flower's unauthenticated endpoints, no secret is committed. The `ha`
profile's sentinel script is run here as the container would run it, and the
sentinel it starts (redis-server --sentinel) must find a local primary and replica.
"""

from __future__ import annotations

import grp
import hashlib
import http.client
import http.server
import importlib.metadata
import importlib.util
import json
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
NGINX = ROOT / "deploy" / "nginx.conf"
ENV_EXAMPLE = ROOT / ".env.example"
LOCK = ROOT / "requirements.lock"
DOCKERIGNORE = ROOT / ".dockerignore"

WORKER_CMD = ["celery", "-A", "dreams_sms.worker", "worker", "-Q", "dreams.send,dreams.ops",
              "-l", "INFO"]
EXPECTED_COMMANDS = {
    # service: (command, the command may go on with more arguments)
    "worker": (WORKER_CMD, True),
    "beat": (["celery", "-A", "dreams_sms.worker", "beat", "-l", "INFO"], False),
    "flower": (["dreams-sms", "flower", "--address", "0.0.0.0", "--port", "5555"], False),
    "sandbox": (["dreams-sms", "sandbox", "--host", "0.0.0.0", "--port", "8025", "--admin"],
                False),
    "metrics": (["dreams-sms", "metrics", "--address", "0.0.0.0", "--port", "9108"], False),
    "api": (["dreams-sms", "serve", "--address", "0.0.0.0", "--port", "8080"], False),
}
APP_SERVICES = set(EXPECTED_COMMANDS)
SENTINELS = {"sentinel-1", "sentinel-2", "sentinel-3"}
# profile ha: a primary, a replica and three sentinels in place of the single redis
HA_SERVICES = {"redis-primary", "redis-replica"} | SENTINELS
SERVICES = APP_SERVICES | {"redis", "proxy"} | HA_SERVICES
# ha node: (the redis-server options it starts with, besides the durable ones)
HA_NODE_OPTIONS = {
    "redis-primary": ["--replica-announce-ip", "redis-primary"],
    "redis-replica": ["--replica-announce-ip", "redis-replica", "--replicaof", "redis-primary",
                      "6379"],
}
MASTER_NAME = "dreams-main"


# -- a small Dockerfile parser ------------------------------------------------------------
@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def json_args(self) -> list[str] | None:
        """The exec (JSON array) form's items, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, list) else None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with their arguments; comments dropped, continuations joined."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # comment lines vanish, even inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(p for p in pending if p)
        pending = []
        keyword, _, args = joined.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
    assert not pending, "the Dockerfile ends inside a line continuation"
    return out


def expand(value: str, variables: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        default = m.group(2)
        got = variables.get(name, "")
        return got if got else (default or "")

    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)", sub, value)


def stages(instructions: list[Instruction]) -> list[Stage]:
    global_args: dict[str, str] = {}
    out: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "ARG" and not out:
            name, _, default = ins.args.partition("=")
            global_args[name.strip()] = default.strip()
        elif ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--platform")]
            image = expand(words[0], global_args)
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            out.append(Stage(image, name))
        elif out:
            out[-1].instructions.append(ins)
    return out


def copy_parts(ins: Instruction) -> tuple[dict[str, str], list[str], str]:
    """(flags, sources, destination) of a COPY or ADD."""
    items = ins.json_args() or shlex.split(ins.args)
    flags = {}
    while items and items[0].startswith("--"):
        key, _, value = items.pop(0)[2:].partition("=")
        flags[key] = value
    return flags, items[:-1], items[-1]


def env_pairs(ins: Instruction) -> dict[str, str]:
    words = shlex.split(ins.args)
    if len(words) >= 2 and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}  # legacy `ENV KEY value`
    return dict(w.split("=", 1) for w in words)


@pytest.fixture(scope="module")
def dockerfile() -> list[Stage]:
    return stages(parse_dockerfile(DOCKERFILE.read_text()))


@pytest.fixture(scope="module")
def final(dockerfile: list[Stage]) -> Stage:
    return dockerfile[-1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def test_parser_handles_continuations_and_comments() -> None:
    text = "FROM a:1 AS b\n# note\nRUN one \\\n    # inside\n    two \\\n    three\nUSER x\n"
    parsed = parse_dockerfile(text)
    assert [(i.keyword, i.args) for i in parsed] == [
        ("FROM", "a:1 AS b"), ("RUN", "one two three"), ("USER", "x")]
    assert parsed[1].line == 3


# -- Dockerfile ---------------------------------------------------------------------------
def test_dockerfile_is_multi_stage_on_one_base(dockerfile: list[Stage]) -> None:
    assert len(dockerfile) >= 2
    names = {s.name for s in dockerfile if s.name}
    bases = {s.base for s in dockerfile if s.base not in names}
    assert len(bases) == 1, f"builder and runtime should share one base, got {bases}"
    assert "slim" in next(iter(bases))


def image_is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def test_base_images_are_pinned(dockerfile: list[Stage], services: dict[str, dict]) -> None:
    names = {s.name for s in dockerfile if s.name}
    for stage in dockerfile:
        if stage.base not in names:
            assert image_is_pinned(stage.base), stage.base
    for name in ("redis", "proxy"):
        assert image_is_pinned(services[name]["image"]), services[name]["image"]
    for name in HA_SERVICES:
        assert services[name]["image"] == services["redis"]["image"], name
    assert re.fullmatch(r"redis:7\.\d+(\.\d+)?(-[\w.]+)?", services["redis"]["image"])
    assert services["proxy"]["image"].startswith("nginx:")


def test_builder_installs_the_lock_then_the_wheel_without_deps(dockerfile: list[Stage]) -> None:
    runs = " ".join(i.args for s in dockerfile[:-1] for i in s.all("RUN"))
    assert re.search(r"pip install --no-cache-dir -r requirements\.lock", runs)
    assert re.search(r"pip wheel [^&]*--no-deps", runs)
    assert re.search(r"pip install --no-cache-dir --no-deps \S+\.whl", runs)
    assert "/opt/venv" in runs


def test_final_stage_is_lean_and_non_root(dockerfile: list[Stage], final: Stage) -> None:
    users = final.all("USER")
    assert users, "the final stage must switch to a non-root USER"
    user = users[-1].args.split(":")[0].strip()
    assert user not in ("root", "0", "")
    # every RUN after the USER runs unprivileged; nothing built or installed in this stage
    runs = " ".join(i.args for i in final.all("RUN"))
    for tool in ("apt-get install", "build-essential", "gcc", "pip install", "apk add"):
        assert tool not in runs, f"{tool!r} in the final stage"
    copies = [copy_parts(i) for i in final.all("COPY") + final.all("ADD")]
    assert copies and all(flags.get("from") == dockerfile[0].name for flags, _, _ in copies)
    env = {k: v for i in final.all("ENV") for k, v in env_pairs(i).items()}
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert "/opt/venv/bin" in env.get("PATH", "")


def test_default_command_is_the_worker_and_ports_are_exposed(final: Stage) -> None:
    assert not final.all("ENTRYPOINT"), "an ENTRYPOINT would break per-role commands"
    cmd = final.all("CMD")[-1].json_args()
    assert cmd == WORKER_CMD
    exposed = {p.split("/")[0] for i in final.all("EXPOSE") for p in i.args.split()}
    assert {"5555", "8025", "9108"} <= exposed


def test_healthcheck_fits_the_default_command(final: Stage) -> None:
    checks = final.all("HEALTHCHECK")
    assert len(checks) == 1
    words = shlex.split(checks[0].args)
    options = [w for w in words if w.startswith("--")]
    assert any(o.startswith("--timeout=") for o in options)
    command = words[words.index("CMD") + 1:]
    assert command[:3] == ["celery", "-A", "dreams_sms.worker"]
    assert "ping" in command


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or a parent decides."""

    def to_regex(pattern: str) -> re.Pattern[str]:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                out += ".*"
                i += 2
            elif pattern[i] == "*":
                out += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(pattern[i])
                i += 1
        return re.compile(out + r"\Z")

    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = os.path.normpath(pattern.strip().lstrip("/"))
        rx = to_regex(pattern)
        if any(rx.match(c) for c in candidates):
            excluded = not negate
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def test_dockerignore_matcher() -> None:
    pats = ["*", "!pkg/", "**/__pycache__"]
    assert dockerignore_excludes(".env", pats)
    assert not dockerignore_excludes("pkg/a.py", pats)
    assert dockerignore_excludes("pkg/__pycache__/a.pyc", pats)


def test_copied_files_exist_and_reach_the_build_context(dockerfile: list[Stage]) -> None:
    patterns = dockerignore_patterns()
    sources = [src for stage in dockerfile for i in stage.all("COPY") + stage.all("ADD")
               for flags, srcs, _ in [copy_parts(i)] if "from" not in flags for src in srcs]
    assert {"requirements.lock", "pyproject.toml", "README.md"} <= set(sources)
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: no such file"
        assert not dockerignore_excludes(src, patterns), f"COPY {src}: .dockerignore drops it"
    assert not dockerignore_excludes("dreams_sms/cli.py", patterns)
    for private in (".env", ".git/config", "tests/test_config.py", ".venv/bin/python",
                    "dreams_sms/__pycache__/cli.cpython-311.pyc"):
        assert dockerignore_excludes(private, patterns), f"{private} would be sent to docker"


# -- requirements.lock --------------------------------------------------------------------
def lock_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line)
        assert m, f"requirements.lock: {line!r} is not an exact NAME==VERSION pin"
        name = canonicalize_name(m.group(1))
        assert name not in pins, f"{name} pinned twice"
        pins[name] = m.group(2)
    return pins


def project_dependencies() -> list[Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [Requirement(d) for d in data["project"]["dependencies"]]


def test_lock_pins_every_runtime_dependency() -> None:
    pins = lock_pins()
    assert "dreams-sms" not in pins, "the package itself comes from the wheel"
    for req in project_dependencies():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is a dependency but not in requirements.lock"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{name}=={pins[name]} is outside pyproject's {req.specifier}"


def test_lock_is_closed_under_requirements() -> None:
    """Each locked package's own requirements are locked too (checked where the
    installed version is the locked one, so the metadata is the right one)."""
    pins = lock_pins()
    env = default_environment()
    todo = [(r, set(r.extras)) for r in project_dependencies()]
    seen: set[tuple[str, frozenset[str]]] = set()
    checked = 0
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if dist.version != pins.get(name):
            continue
        checked += 1
        for raw in dist.requires or []:
            sub = Requirement(raw)
            wanted = sub.marker is None or any(
                sub.marker.evaluate({**env, "extra": e}) for e in (extras or {""}))
            if wanted:
                sub_name = canonicalize_name(sub.name)
                assert sub_name in pins, f"{sub_name} (needed by {name}) is not locked"
                todo.append((sub, set(sub.extras)))
    if not checked:
        pytest.skip("no locked version is installed here to read requirements from")


# -- docker-compose.yml -------------------------------------------------------------------
def tokens(command: str | list[str] | None) -> list[str]:
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?+])([^}]*))?\}|\$(\w+)")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, $$."""
    value = value.replace("$$", "\0")

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3)
        got = env.get(name)
        if op in (":-", "-") and (got is None or (op == ":-" and got == "")):
            return arg
        if op in (":?", "?") and (got is None or (op == ":?" and got == "")):
            raise KeyError(f"{name}: {arg}")
        return got or ""

    return _VAR.sub(sub, value).replace("\0", "$")


def compose_vars(text: str) -> dict[str, str | None]:
    """Every interpolated variable: name -> operator (None for plain ${VAR})."""
    found: dict[str, str | None] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for m in _VAR.finditer(line.replace("$$", "")):
            name = m.group(1) or m.group(4)
            op = m.group(2)
            if name not in found or op in (None, ":?", "?"):
                found[name] = op
    return found


def test_services(services: dict[str, dict]) -> None:
    assert set(services) == SERVICES


@pytest.mark.parametrize("name", sorted(EXPECTED_COMMANDS))
def test_service_command(services: dict[str, dict], name: str) -> None:
    expected, more = EXPECTED_COMMANDS[name]
    got = tokens(services[name].get("command"))
    assert (got[: len(expected)] if more else got) == expected


def test_app_services_share_the_built_image(services: dict[str, dict]) -> None:
    images = set()
    for name in APP_SERVICES:
        svc = services[name]
        build = svc.get("build")
        context = build.get("context") if isinstance(build, dict) else build
        assert context in (".", "./"), f"{name}: build: ."
        assert svc.get("image"), f"{name}: an image: name for the built image"
        images.add(interpolate(svc["image"], {}))
    assert len(images) == 1, images


def test_app_services_read_the_env_file(services: dict[str, dict]) -> None:
    for name in APP_SERVICES - {"sandbox"}:
        env_file = services[name].get("env_file")
        files = [env_file] if isinstance(env_file, str) else [
            f if isinstance(f, str) else f["path"] for f in env_file or []]
        assert ".env" in files, f"{name}: env_file: .env"
    # The sandbox needs no settings and is kept away from the real secrets.
    assert not services["sandbox"].get("env_file")


@pytest.mark.parametrize("name", ["redis", "redis-primary", "redis-replica"])
def test_redis_is_durable(compose: dict, services: dict[str, dict], name: str) -> None:
    redis = services[name]
    args = " ".join(tokens(redis["command"]))
    assert "--appendonly yes" in args
    assert "--appendfsync everysec" in args
    assert "--maxmemory-policy noeviction" in args
    volumes = [v if isinstance(v, str) else f"{v['source']}:{v['target']}"
               for v in redis["volumes"]]
    named = [v.split(":")[0] for v in volumes if v.split(":")[1] == "/data"]
    assert named and named[0] in (compose.get("volumes") or {}), "a named volume for /data"
    assert "redis-cli ping" in " ".join(tokens(redis["healthcheck"]["test"]))
    assert not redis.get("ports"), "Redis is for this project's services only"


def published(svc: dict) -> list[str]:
    return [p if isinstance(p, str) else f"{p.get('host_ip', '')}:{p.get('published', '')}"
            for p in svc.get("ports") or []]


def test_worker_scales(services: dict[str, dict]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker
    assert not worker.get("ports")
    assert not worker.get("hostname"), "a fixed hostname would give every replica one name"
    assert worker.get("deploy", {}).get("replicas", 1) >= 1


def test_exactly_one_beat(services: dict[str, dict]) -> None:
    beat = services["beat"]
    assert beat.get("deploy", {}).get("replicas") == 1 or beat.get("scale") == 1
    section = COMPOSE.read_text().split("\n  beat:\n", 1)[1].split("\n  flower:\n", 1)[0]
    assert "redbeat" in section and "lock" in section, "say why one beat, and the lock"


def test_flower_is_not_published_and_has_auth(services: dict[str, dict]) -> None:
    flower = services["flower"]
    assert not flower.get("ports"), "Flower serves /metrics and /healthcheck without auth"
    auth = (flower.get("environment") or {}).get("DREAMS_FLOWER_AUTH")
    assert auth is None or re.fullmatch(r"\$\{DREAMS_FLOWER_AUTH(:?[?-][^}]*)?\}", auth), \
        "the password comes from the env file, not the compose file"
    assert parse_env_file(ENV_EXAMPLE)[0].get("DREAMS_FLOWER_AUTH", "").count(":") == 1


def test_proxy_publishes_flower_and_the_api(services: dict[str, dict]) -> None:
    proxy = services["proxy"]
    ports = published(proxy)
    assert len(ports) == 2
    for port in ports:
        container_port = interpolate(port, {}).rsplit(":", 1)[1]
        assert f"listen {container_port};" in NGINX.read_text()
    mounts = [v.split(":") for v in proxy["volumes"]]
    assert any((ROOT / src).resolve() == NGINX and dst == "/etc/nginx/nginx.conf"
               for src, dst, *_ in mounts)
    assert proxy["depends_on"]["flower"]["condition"] == "service_healthy"
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"


def test_the_api_scales_and_is_not_published(services: dict[str, dict]) -> None:
    api = services["api"]
    assert not api.get("ports") and "container_name" not in api
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"


def test_metrics_only_on_loopback(services: dict[str, dict]) -> None:
    for port in published(services["metrics"]):
        assert interpolate(port, {}).startswith("127.0.0.1:"), port


def test_only_the_proxy_and_loopback_are_published(services: dict[str, dict]) -> None:
    for name, svc in services.items():
        if name == "proxy":
            continue
        for port in published(svc):
            assert interpolate(port, {}).startswith("127.0.0.1:"), f"{name} publishes {port}"


def test_dependencies_wait_for_health(services: dict[str, dict], final: Stage) -> None:
    for name in ("worker", "beat", "flower", "metrics"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    for name in SENTINELS | {"redis-replica"}:
        assert services[name]["depends_on"]["redis-primary"]["condition"] == "service_healthy"
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: use the long depends_on form"
        for dep, how in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if how.get("condition") == "service_healthy":
                target = services[dep]
                has_own = "healthcheck" in target
                inherits = dep in APP_SERVICES and tokens(target.get("command"))[:len(
                    WORKER_CMD)] == WORKER_CMD and final.all("HEALTHCHECK")
                assert has_own or inherits, f"{dep} has no healthcheck to wait for"


def test_every_service_is_health_checked(services: dict[str, dict]) -> None:
    for name, svc in services.items():
        if name == "worker":
            assert "healthcheck" not in svc or not svc["healthcheck"].get("disable")
            continue  # the image's HEALTHCHECK fits the worker
        check = svc.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"


def test_sandbox_healthcheck_matches_its_command(services: dict[str, dict]) -> None:
    sandbox = services["sandbox"]
    cmd = tokens(sandbox["command"])
    port = cmd[cmd.index("--port") + 1]
    check = " ".join(tokens(sandbox["healthcheck"]["test"]))
    assert f"http://127.0.0.1:{port}/" in check
    if "/_sandbox/" in check:
        assert "--admin" in cmd, "the /_sandbox/ routes exist only with --admin"


def test_healthchecks_use_the_right_ports(services: dict[str, dict]) -> None:
    for name in ("flower", "metrics", "api"):
        cmd = tokens(services[name]["command"])
        port = cmd[cmd.index("--port") + 1]
        assert f"127.0.0.1:{port}/" in " ".join(tokens(services[name]["healthcheck"]["test"]))


def test_defaults_point_at_the_sandbox_service(services: dict[str, dict]) -> None:
    env = {k: interpolate(str(v), {}) for k, v in services["worker"]["environment"].items()}
    sandbox = tokens(services["sandbox"]["command"])
    port = sandbox[sandbox.index("--port") + 1]
    assert env["DREAMS_BASE_URL"] == f"http://sandbox:{port}/index.php/api"
    assert env["REDIS_URL"].startswith("redis://redis:6379/")
    assert "DREAMS_ON_UNKNOWN" not in env, \
        "a compose default of reconcile would survive a switch to the real provider"


SECRETISH = re.compile(r"SECRET|PASSWORD|TOKEN|AUTH|KEY", re.IGNORECASE)


def test_no_secrets_in_the_compose_file(services: dict[str, dict]) -> None:
    text = COMPOSE.read_text()
    assert "client_secret" not in text.lower()
    assert "demo-secret" not in text
    assert not re.search(r"DREAMS_SECRET_KEY\s*[=:]\s*(?!\$\{)[^\s#]", text)
    assert "change-me" not in text
    for name, svc in services.items():
        env = svc.get("environment") or {}
        items = env.items() if isinstance(env, dict) else (e.partition("=")[::2] for e in env)
        for key, value in items:
            if SECRETISH.search(key):
                assert re.fullmatch(r"\$\{\w+(:?[-?][^}]*)?\}", str(value)), \
                    f"{name}: {key} must come from the env file"
        # Compose never expands a secret into a command (`docker compose config` and
        # `docker inspect` would show it): the container's shell does, from environment.
        for part in ("command", "healthcheck"):
            text_of = " ".join(tokens(svc.get(part) if part == "command"
                                      else (svc.get(part) or {}).get("test")))
            expanded = [v for v in compose_vars(text_of) if SECRETISH.search(v)]
            assert not expanded, f"{name}: {part} interpolates {expanded}"
    # Every password option takes a shell variable or a printf %s, never a value.
    found = re.findall(r"(--requirepass|--masterauth|requirepass|sentinel-pass|"
                       r"auth-pass dreams-main)\s+(\S+)", text)
    assert len(found) >= 7, found  # 2 nodes x 2 options, the sentinel's 3
    for option, value in found:
        assert value == '"$$REDIS_PASSWORD"' or value.startswith("%s"), (option, value)
    active, _ = parse_env_file(ENV_EXAMPLE)
    assert active["REDIS_PASSWORD"] == active["REDIS_SENTINEL_PASSWORD"] == ""


# -- the commands exist -------------------------------------------------------------------
def all_commands(services: dict[str, dict], final: Stage) -> list[list[str]]:
    cmds = [tokens(svc.get("command")) for svc in services.values()
            if svc.get("image") == services["worker"]["image"]]
    cmds.append(final.all("CMD")[-1].json_args() or [])
    hc = shlex.split(final.all("HEALTHCHECK")[0].args)
    cmds.append(hc[hc.index("CMD") + 1:])
    for svc in services.values():
        test = tokens((svc.get("healthcheck") or {}).get("test"))
        if test[:1] in (["CMD"], ["CMD-SHELL"]):
            cmds.append(test[1:])
    return [c for c in cmds if c]


def test_named_modules_import(services: dict[str, dict], final: Stage) -> None:
    names = set()
    for cmd in all_commands(services, final):
        names |= set(re.findall(r"\bdreams_sms(?:\.\w+)*", " ".join(cmd)))
    assert "dreams_sms.worker" in names
    for name in sorted(names):
        assert importlib.util.find_spec(name) is not None, f"{name} does not exist"


def test_celery_app_imports_and_serves_the_queues(services: dict[str, dict]) -> None:
    from dreams_sms.worker import app as celeryapp

    cmd = tokens(services["worker"]["command"])
    assert cmd[cmd.index("-Q") + 1].split(",") == [celeryapp.SEND_QUEUE, celeryapp.OPS_QUEUE]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DREAMS_", "CELERY"))}
    env.update(REDIS_URL="redis://127.0.0.1:1/0",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    probe = ("import celery, dreams_sms.worker.celery as w; "
             "assert isinstance(w.app, celery.Celery); "
             "print(w.app.conf.beat_scheduler, w.app.conf.redbeat_key_prefix)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    scheduler, prefix = out.stdout.split()
    assert scheduler == "dreams_sms.worker.beat:Scheduler"  # redbeat's, riding out failovers
    # the beat healthcheck looks for redbeat's lock under this prefix
    assert prefix == "dreams:redbeat"
    assert "':redbeat:lock'" in " ".join(tokens(services["beat"]["healthcheck"]["test"]))


def test_dreams_sms_subcommands_exist(services: dict[str, dict]) -> None:
    from dreams_sms.ops.cli import main
    from dreams_sms.sandbox.__main__ import parser as sandbox_parser

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["dreams-sms"] == "dreams_sms.ops.cli:main"
    assert isinstance(main, click.Group)
    used = [tokens(svc.get("command")) for svc in services.values()]
    used = [c for c in used if c[:1] == ["dreams-sms"]]
    assert {c[1] for c in used} == {"flower", "sandbox", "metrics", "serve"}
    for cmd in used:
        sub = main.commands.get(cmd[1])
        assert sub is not None, f"dreams-sms {cmd[1]} does not exist (yet)"
        if cmd[1] == "sandbox":
            sandbox_parser().parse_args(cmd[2:])  # its options go to the sandbox's argparse
            continue
        ctx = sub.make_context(cmd[1], list(cmd[2:]), resilient_parsing=False)
        assert not ctx.args, f"dreams-sms {cmd[1]}: unknown arguments {ctx.args}"
        for option in ("address", "port"):
            assert str(ctx.params[option]) == cmd[cmd.index(f"--{option}") + 1]


# -- nginx --------------------------------------------------------------------------------
# nginx itself checks deploy/nginx.conf and answers for it: the file, with only what ties
# it to the container changed (user, pid, port, temp paths, Flower's address), runs on a
# free loopback port in front of a stand-in for Flower.
NGINX_BIN = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK)
                                      else None)


def flower_upstream(services: dict[str, dict]) -> str:
    cmd = tokens(services["flower"]["command"])
    return f"http://flower:{cmd[cmd.index('--port') + 1]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_upstream(services: dict[str, dict]) -> str:
    cmd = tokens(services["api"]["command"])
    return f"http://api:{cmd[cmd.index('--port') + 1]}"


def local_nginx_conf(text: str, tmp: Path, port: int, upstream: str, flower: str,
                     api_port: int, api: str) -> str:
    """deploy/nginx.conf for a run here; every change must find its line exactly once."""
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    temp = "".join(f"\n    {kind}_temp_path {tmp / kind};"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    changes = [
        (r"(?m)^user \S+;", user),  # the image's user; here whoever runs the tests
        (r"(?m)^pid \S+;", f"pid {tmp / 'nginx.pid'};"),
        (r"(?m)^(\s*)listen 8080;", rf"\g<1>listen 127.0.0.1:{port};"),
        (r"(?m)^(\s*)listen 8081;", rf"\g<1>listen 127.0.0.1:{api_port};"),
        (r"(?m)^http \{", "http {" + temp),
        (re.escape(flower), upstream),  # an address: no need for Docker's resolver
        (re.escape(api), upstream),  # the same stand-in answers for the API
    ]
    if not Path("/etc/nginx/mime.types").exists():
        changes.append((r"include /etc/nginx/mime\.types;", "types {}"))
    for pattern, replacement in changes:
        text, n = re.subn(pattern, replacement, text)
        assert n == 1, f"deploy/nginx.conf: {pattern!r} matched {n} times; update this test"
    return text


class FlowerStandIn(http.server.ThreadingHTTPServer):
    """Answers every GET with 200 and remembers the paths that reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        seen = self.paths

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                body = b"flower"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.headers.get("Transfer-Encoding") == "chunked":
                    while (size := int(self.rfile.readline().strip() or b"0", 16)):
                        length += len(self.rfile.read(size + 2)) - 2
                    self.rfile.readline()
                else:
                    self.rfile.read(length)
                seen.append(f"POST {self.path} {length}")
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@dataclass
class Proxy:
    port: int
    flower: FlowerStandIn
    conf: Path
    api_port: int = 0

    def get(self, uri: str, port: int | None = None) -> tuple[int, bool]:
        """(status, whether the request reached Flower); `uri` is sent as it is."""
        before = len(self.flower.paths)
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=5)
        try:
            conn.request("GET", uri)
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        reached = self.flower.paths[before:]
        assert reached in ([], [uri]), (uri, reached)  # proxied untouched, or not at all
        return response.status, bool(reached)


def nginx_test(conf: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    assert NGINX_BIN
    return subprocess.run([NGINX_BIN, "-t", "-q", "-p", str(tmp), "-e", "stderr", "-c", str(conf)],
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture(scope="module")
def proxy(services: dict[str, dict], tmp_path_factory) -> Iterator[Proxy]:
    if NGINX_BIN is None:
        pytest.skip("nginx is not installed (scripts/setup installs Debian's nginx-light)")
    tmp = tmp_path_factory.mktemp("nginx")
    flower = FlowerStandIn()
    threading.Thread(target=flower.serve_forever, args=(0.05,), daemon=True).start()
    port, api_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{flower.server_address[1]}"
    conf = tmp / "nginx.conf"
    conf.write_text(local_nginx_conf(NGINX.read_text(), tmp, port, upstream,
                                     flower_upstream(services), api_port,
                                     api_upstream(services)))
    checked = nginx_test(conf, tmp)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen([NGINX_BIN, "-p", str(tmp), "-e", "stderr", "-c", str(conf),
                             "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "nginx did not listen within 10 s"
            time.sleep(0.02)
        yield Proxy(port, flower, conf, api_port)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
        flower.shutdown()
        flower.server_close()


def test_nginx_accepts_the_config(proxy: Proxy) -> None:
    checked = nginx_test(proxy.conf, proxy.conf.parent)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("uri", ["/metrics", "/healthcheck", "/metrics/", "/healthcheck/",
                                 "/METRICS", "/Healthcheck", "//metrics", "/metrics;x",
                                 "/metrics?x=1", "/%6Detrics", "/./healthcheck",
                                 "/static/../metrics", "/%2Fmetrics"])
def test_proxy_refuses_flower_unauthenticated_endpoints(proxy: Proxy, uri: str) -> None:
    assert proxy.get(uri) == (404, False), uri


@pytest.mark.parametrize("uri", ["/", "/workers", "/tasks", "/task/abc", "/api/workers",
                                 "/static/css/x.css", "/login", "/broker",
                                 "/api/task/info/metrics"])
def test_proxy_passes_the_ui_to_flower(proxy: Proxy, uri: str) -> None:
    assert proxy.get(uri) == (200, True), uri


def test_proxy_answers_its_own_health_itself(proxy: Proxy) -> None:
    assert proxy.get("/_proxy/health") == (200, False)
    assert proxy.get("/_proxy/health", proxy.api_port) == (200, False)


@pytest.mark.parametrize("uri", ["/v1/senders", "/v1/messages/c1-1", "/healthz",
                                 "/openapi.json", "/docs"])
def test_proxy_passes_the_api(proxy: Proxy, uri: str) -> None:
    assert proxy.get(uri, proxy.api_port) == (200, True), uri


def test_proxy_streams_large_uploads_to_the_api(proxy: Proxy) -> None:
    """Past nginx's 1 MB default, chunked: the API, not the proxy, enforces its limit."""
    body = b"to,text\n" + b"0551234567,hello\n" * 200_000  # 3.4 MB
    conn = http.client.HTTPConnection("127.0.0.1", proxy.api_port, timeout=30)
    try:
        conn.request("POST", "/v1/campaigns?sender=Dreams", body=iter([body[:10], body[10:]]),
                     headers={"Content-Type": "text/csv"}, encode_chunked=True)
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 200
    assert f"POST /v1/campaigns?sender=Dreams {len(body)}" in proxy.flower.paths


def test_proxy_points_at_the_apis_port(services: dict[str, dict]) -> None:
    assert f"set $api_upstream {api_upstream(services)};" in NGINX.read_text()
    assert "proxy_request_buffering off;" in NGINX.read_text()


def test_proxy_points_at_flowers_port(services: dict[str, dict]) -> None:
    assert "proxy_pass $flower_upstream;" in NGINX.read_text()
    assert f"set $flower_upstream {flower_upstream(services)};" in NGINX.read_text()


# -- .env.example -------------------------------------------------------------------------
def parse_env_file(path: Path) -> tuple[dict[str, str], set[str]]:
    """(active KEY=value pairs, names mentioned in commented-out KEY= lines)."""
    active: dict[str, str] = {}
    commented: set[str] = set()
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"\s*([A-Z][A-Z0-9_]*)=(.*)", line)
        if m:
            assert m.group(1) not in active, f"{m.group(1)} set twice"
            active[m.group(1)] = m.group(2)
            continue
        m = re.fullmatch(r"\s*#\s*([A-Z][A-Z0-9_]*)=.*", line)
        if m:
            commented.add(m.group(1))
    return active, commented


def test_env_example_covers_the_compose_file() -> None:
    active, commented = parse_env_file(ENV_EXAMPLE)
    for name, op in compose_vars(COMPOSE.read_text()).items():
        assert name in active or name in commented, f"${{{name}}} is not in .env.example"
        if op in (None, ":?", "?"):
            assert active.get(name), f"${{{name}}} has no default: .env.example needs a value"


def test_env_example_agrees_with_compose_defaults() -> None:
    active, _ = parse_env_file(ENV_EXAMPLE)
    for m in re.finditer(r"\$\{(\w+):?-([^}]*)\}", COMPOSE.read_text()):
        name, default = m.groups()
        if name in active:
            assert active[name] == default, f"{name}: .env.example and compose disagree"


def test_env_example_names_are_known() -> None:
    from dreams_sms.config import ENV

    active, commented = parse_env_file(ENV_EXAMPLE)
    known = set(ENV) | {"DREAMS_SECRET_KEY", "DREAMS_SECRET_KEY_FILE", "DREAMS_CLIENT_SECRET",
                        "DREAMS_CLIENT_SECRET_FILE", "DREAMS_FLOWER_AUTH"}
    known |= set(compose_vars(COMPOSE.read_text()))
    unknown = (set(active) | commented) - known
    assert not unknown, f"not read by the package nor used by the compose file: {unknown}"


def test_env_example_defaults_to_the_sandbox_and_documents_the_real_provider() -> None:
    from dreams_sms.config import Settings

    active, commented = parse_env_file(ENV_EXAMPLE)
    settings = Settings.from_env(active)
    settings.require_credentials()
    assert settings.base_url.startswith("http://sandbox:")
    assert settings.secret_key.reveal() == "demo-secret"
    text = ENV_EXAMPLE.read_text()
    assert re.search(r"^#\s*DREAMS_BASE_URL=https://www\.dreams\.sa/index\.php/api$", text, re.M)
    assert re.search(r"^#\s*DREAMS_ON_UNKNOWN=hold$", text, re.M)
    assert re.search(r"^#\s*DREAMS_SECRET_KEY_FILE=/\S+$", text, re.M)
    assert {"DREAMS_USER", "DREAMS_SECRET_KEY"} <= commented


def test_the_env_file_is_never_committed() -> None:
    ignored = [ln.strip() for ln in (ROOT / ".gitignore").read_text().splitlines()]
    assert ".env" in ignored


# -- the ha profile: primary, replica, three sentinels ------------------------------------
def node_options(svc: dict) -> list[str]:
    """The redis-server options an ha node's `sh -c` starts with (its `set --` line)."""
    cmd = tokens(svc["command"])
    assert cmd[:2] == ["sh", "-c"] and len(cmd) == 3, cmd
    script = interpolate(cmd[2], {"REDIS_MAXMEMORY": "0"})
    first = script.splitlines()[0]
    assert first.startswith("set -- "), first
    assert 'exec docker-entrypoint.sh redis-server "$@"' in script, \
        "through the image's entrypoint, which drops root for the redis user"
    return shlex.split(first)[2:]


def test_only_the_ha_services_have_a_profile(services: dict[str, dict]) -> None:
    for name, svc in services.items():
        if name in HA_SERVICES:
            assert svc.get("profiles") == ["ha"], f"{name}: profiles: [ha]"
        else:
            assert not svc.get("profiles"), f"{name} must run without a profile"


@pytest.mark.parametrize("name", sorted(HA_NODE_OPTIONS))
def test_ha_node_options(services: dict[str, dict], name: str) -> None:
    options = node_options(services[name])
    durable = ["--appendonly", "yes", "--appendfsync", "everysec",
               "--maxmemory-policy", "noeviction", "--maxmemory", "0"]
    assert options == durable + HA_NODE_OPTIONS[name]
    script = tokens(services[name]["command"])[2]
    assert 'set -- "$$@" --requirepass "$$REDIS_PASSWORD" --masterauth "$$REDIS_PASSWORD"' \
        in script
    assert services[name]["environment"] == {"REDIS_PASSWORD": "${REDIS_PASSWORD:-}"}


def test_the_replica_replicates_the_primary(services: dict[str, dict]) -> None:
    replica = node_options(services["redis-replica"])
    at = replica.index("--replicaof")
    assert replica[at + 1:at + 3] == ["redis-primary", "6379"]
    primary = node_options(services["redis-primary"])
    assert "--replicaof" not in primary and "--port" not in primary  # 6379, the default
    volumes = {v for name in ("redis", "redis-primary", "redis-replica")
               for v in services[name]["volumes"]}
    assert len(volumes) == 3, "each node its own /data"


def test_app_services_depend_on_redis_optionally(services: dict[str, dict]) -> None:
    """--profile ha --scale redis=0 leaves them nothing to wait for: required: false."""
    for name in APP_SERVICES - {"sandbox"}:
        dep = services[name]["depends_on"]["redis"]
        assert dep["condition"] == "service_healthy" and dep["required"] is False, name
    assert "redis" not in (services["sandbox"].get("depends_on") or {})
    header = COMPOSE.read_text().split("\nname:", 1)[0]
    assert "--profile ha up -d" in header and "--scale redis=0" in header
    assert sentinel_url_in_env_example() in header


def sentinel_url_in_env_example() -> str:
    found = re.findall(r"(?m)^#\s*REDIS_URL=(sentinel://\S+)$", ENV_EXAMPLE.read_text())
    assert len(found) == 1, "one commented-out REDIS_URL=sentinel://... line in .env.example"
    return found[0]


def test_env_example_sentinel_url_names_the_sentinels(services: dict[str, dict]) -> None:
    from dreams_sms.config import SentinelTarget, Settings

    target = SentinelTarget.parse(sentinel_url_in_env_example())
    assert target.master == MASTER_NAME
    assert {host for host, _ in target.hosts} == SENTINELS
    assert {port for _, port in target.hosts} == {26379}
    active, commented = parse_env_file(ENV_EXAMPLE)
    assert {"DREAMS_REPLICA_ACKS", "DREAMS_REPLICA_TIMEOUT"} <= commented
    settings = Settings.from_env({**active, "REDIS_URL": sentinel_url_in_env_example()})
    assert settings.sentinel == target and settings.replicas_to_confirm == 1
    assert Settings.from_env(active).replicas_to_confirm == 0


def test_three_sentinels_share_one_definition(services: dict[str, dict]) -> None:
    text = COMPOSE.read_text()
    assert len(re.findall(r"(?m)^  sentinel-\d:\n    <<: \*sentinel$", text)) == 3
    shared = {json.dumps({k: v for k, v in services[name].items()
                          if k not in ("hostname", "volumes")}, sort_keys=True)
              for name in SENTINELS}
    assert len(shared) == 1
    for name in SENTINELS:
        assert services[name]["hostname"] == name  # its sentinel id comes from it
        assert services[name]["volumes"] == [f"{name}-data:/data"]
        assert f"{name}-data" in (yaml.safe_load(text).get("volumes") or {})
        check = " ".join(tokens(services[name]["healthcheck"]["test"]))
        assert "redis-cli -p 26379 ping" in check and "REDISCLI_AUTH" in check


SCRIPT_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REDIS_PASSWORD": "",
              "REDIS_SENTINEL_PASSWORD": ""}


def sentinel_script(services: dict[str, dict], data: Path, server: str, *,
                    primary: tuple[str, int] = ("redis-primary", 6379),
                    port: int = 26379) -> str:
    """sentinel-1's `sh -c` script as the container runs it, with what ties it to the
    container swapped: /data, the primary's address, the port, the entrypoint."""
    cmd = tokens(services["sentinel-1"]["command"])
    assert cmd[:2] == ["sh", "-c"] and len(cmd) == 3, cmd
    script = interpolate(cmd[2], {})
    changes = [("/data/", f"{data}/", None),
               ("redis-primary 6379", f"{primary[0]} {primary[1]}", 1),
               ("port 26379", f"port {port}", 1),
               ("exec docker-entrypoint.sh redis-server", f"exec {server}", 1)]
    for old, new, times in changes:
        n = script.count(old)
        assert n >= 1 if times is None else n == times, f"{old!r}: {n} times; update this test"
        script = script.replace(old, new)
    return script


def render(services: dict[str, dict], data: Path, **env: str) -> str:
    """Run the script up to its exec (a no-op here); the config it leaves."""
    script = sentinel_script(services, data, "true")
    done = subprocess.run(["sh", "-c", script], env={**SCRIPT_ENV, "HOSTNAME": "sentinel-1", **env},
                          capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    return (data / "sentinel.conf").read_text()


needs_shell_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("sh", "sha1sum", "cmp", "cut")),
    reason="the sentinel script needs sh, sha1sum, cmp and cut")


@needs_shell_tools
def test_sentinel_config(services: dict[str, dict], tmp_path: Path) -> None:
    lines = render(services, tmp_path).splitlines()
    monitor = [ln.split() for ln in lines if ln.startswith("sentinel monitor ")]
    assert monitor == [["sentinel", "monitor", MASTER_NAME, "redis-primary", "6379", "2"]]
    # hostnames are resolved only when told so before the monitor line
    assert lines.index("sentinel resolve-hostnames yes") < lines.index(" ".join(monitor[0]))
    assert "sentinel announce-hostnames yes" in lines
    assert "port 26379" in lines
    options = {tuple(ln.split()[:3]): ln.split()[3:] for ln in lines if ln.startswith("sentinel ")}
    assert 1000 <= int(options["sentinel", "down-after-milliseconds", MASTER_NAME][0]) <= 30000
    assert int(options["sentinel", "failover-timeout", MASTER_NAME][0]) >= 10000
    assert options["sentinel", "myid", hashlib.sha1(b"sentinel-1").hexdigest()] == []
    assert not [ln for ln in lines if "pass" in ln], "no password set, none configured"


@needs_shell_tools
def test_sentinel_config_takes_the_passwords(services: dict[str, dict], tmp_path: Path) -> None:
    lines = render(services, tmp_path, REDIS_PASSWORD="node-pw",
                   REDIS_SENTINEL_PASSWORD="sentinel-pw").splitlines()
    assert f"sentinel auth-pass {MASTER_NAME} node-pw" in lines
    assert "requirepass sentinel-pw" in lines
    assert "sentinel sentinel-pass sentinel-pw" in lines
    lines = render(services, tmp_path, REDIS_PASSWORD="node-pw").splitlines()  # regenerated
    assert f"sentinel auth-pass {MASTER_NAME} node-pw" in lines
    assert not [ln for ln in lines if "requirepass" in ln or "sentinel-pass" in ln]


@needs_shell_tools
def test_sentinel_keeps_what_it_learned_across_restarts(services: dict[str, dict],
                                                         tmp_path: Path) -> None:
    first = render(services, tmp_path)
    learned = first + "sentinel known-replica dreams-main redis-replica 6379\n"
    (tmp_path / "sentinel.conf").write_text(learned)  # as sentinel rewrites it
    assert render(services, tmp_path) == learned  # restarted: the current master kept
    changed = render(services, tmp_path, REDIS_PASSWORD="new-pw")
    assert "known-replica" not in changed and "auth-pass dreams-main new-pw" in changed
    assert not (tmp_path / "sentinel.new").exists()


@pytest.fixture(scope="module")
def sentinel_set(services: dict[str, dict], tmp_path_factory) -> Iterator[dict]:
    """A primary, its replica and one sentinel started from the compose file's script."""
    from dreams_sms.ops.localredis import LocalRedis

    if not shutil.which("redis-server") or not all(
            shutil.which(t) for t in ("sh", "sha1sum", "cmp", "cut")):
        pytest.skip("needs redis-server, sh, sha1sum, cmp and cut")
    import redis

    tmp = tmp_path_factory.mktemp("sentinel")
    node_pw, sentinel_pw = "node-pw", "sentinel-pw"
    with LocalRedis(password=node_pw) as primary, \
            LocalRedis(password=node_pw,
                       extra=["--replicaof", "127.0.0.1", str(primary.port)]) as replica:
        port = free_port()
        script = sentinel_script(services, tmp, shutil.which("redis-server") or "",
                                 primary=("127.0.0.1", primary.port), port=port)
        script = script.replace(" --sentinel\n", f" --sentinel --bind 127.0.0.1 --logfile "
                                                 f"{tmp / 'sentinel.log'}\n")
        proc = subprocess.Popen(["sh", "-c", script], start_new_session=True,
                                env={**SCRIPT_ENV, "HOSTNAME": "sentinel-1",
                                     "REDIS_PASSWORD": node_pw,
                                     "REDIS_SENTINEL_PASSWORD": sentinel_pw},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        client = redis.Redis(port=port, password=sentinel_pw, decode_responses=True,
                             socket_timeout=2)
        try:
            deadline = time.monotonic() + 5
            while True:
                assert proc.poll() is None, (proc.communicate()[1],
                                             (tmp / "sentinel.log").read_text())
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "the sentinel did not answer in 5 s"
                    time.sleep(0.05)
            yield {"port": port, "client": client, "primary": primary, "replica": replica,
                   "node_pw": node_pw, "sentinel_pw": sentinel_pw}
        finally:
            client.close()
            proc.terminate()
            proc.communicate(timeout=10)


def test_sentinel_runs_from_the_compose_script(sentinel_set: dict) -> None:
    import redis

    client = sentinel_set["client"]
    primary, replica = sentinel_set["primary"], sentinel_set["replica"]
    assert client.sentinel_get_master_addr_by_name(MASTER_NAME) == ("127.0.0.1", primary.port)
    assert client.execute_command("SENTINEL", "MYID") == hashlib.sha1(b"sentinel-1").hexdigest()
    with pytest.raises(redis.AuthenticationError):  # requirepass: the sentinel password
        redis.Redis(port=sentinel_set["port"], socket_timeout=2).ping()
    # The replica is learnt from the master's INFO: auth-pass got the sentinel in.
    deadline = time.monotonic() + 5
    while not (found := client.sentinel_slaves(MASTER_NAME)):
        assert time.monotonic() < deadline, "the sentinel never read the master's INFO"
        time.sleep(0.1)
    assert [int(r["port"]) for r in found] == [replica.port]


def test_beat_healthcheck_and_keys_work_with_a_sentinel_url(
        services: dict[str, dict], sentinel_set: dict) -> None:
    import redis
    from click.testing import CliRunner

    from dreams_sms.ops.cli import main

    test = tokens(services["beat"]["healthcheck"]["test"])
    assert test[:3] == ["CMD", "python", "-c"]
    assert "connect(" in test[3] and "from_url" not in test[3]
    url = f"sentinel://127.0.0.1:{sentinel_set['port']}/{MASTER_NAME}/0"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DREAMS_", "CELERY", "REDIS"))}
    env.update(REDIS_URL=url, REDIS_PASSWORD=sentinel_set["node_pw"],
               REDIS_SENTINEL_PASSWORD=sentinel_set["sentinel_pw"],
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    primary = redis.Redis(port=sentinel_set["primary"].port, password=sentinel_set["node_pw"])
    primary.delete("dreams:redbeat:lock")

    def healthcheck() -> int:
        done = subprocess.run([sys.executable, "-c", test[3]], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=30)
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode

    assert healthcheck() == 1  # no beat holds the lock
    primary.set("dreams:redbeat:lock", "x", ex=60)
    assert healthcheck() == 0
    # `docker compose run --rm api dreams-sms keys create ...` (the header) through it too
    keys_env = {k: env[k] for k in ("REDIS_URL", "REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD")}
    out = CliRunner().invoke(main, ["keys", "create", "--sender", "Dreams"], env=keys_env)
    assert out.exit_code == 0, out.output
    assert primary.keys("dreams:api*"), "the key landed on the sentinels' master"
    primary.close()


def test_no_command_or_healthcheck_bypasses_connect(services: dict[str, dict],
                                                    final: Stage) -> None:
    """redis.Redis.from_url(REDIS_URL) fails on sentinel://: connect() reads both."""
    for cmd in all_commands(services, final):
        assert "from_url" not in " ".join(cmd), cmd
    assert "from_url" not in DOCKERFILE.read_text()
    assert "from_url" not in COMPOSE.read_text()
