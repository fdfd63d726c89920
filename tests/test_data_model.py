"""The Redis data model has one home: keys in queue/keys.py, Lua in queue/lua/.

These checks keep it so: every script documents its KEYS and ARGV, touches only
keys it was given (so a reader, and Redis Cluster, can see every key a step
touches), and every key builder is in use.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
import redis

from dreams_sms.queue import fields as cf
from dreams_sms.queue import scripts
from dreams_sms.queue.delayed import Delayed
from dreams_sms.queue.jobs import Job
from dreams_sms.queue.keys import Keys, ensure_group

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dreams_sms"
LUA = PACKAGE / "queue" / "lua"

#: Named in keys.py, waiting for their callers (in worker/) to switch to them.
PENDING_KEYS: set[str] = set()

#: Redis commands whose first argument is a key.
KEY_COMMANDS = {
    "GET", "SET", "DEL", "EXISTS", "EXPIRE", "EXPIREAT", "PERSIST", "INCRBY", "DECRBY",
    "HGET", "HSET", "HSETNX", "HDEL", "HMGET", "HINCRBY", "HKEYS", "HLEN", "HEXISTS",
    "ZADD", "ZREM", "ZRANGEBYSCORE", "ZREMRANGEBYSCORE", "ZCARD", "ZSCORE", "SADD",
    "XADD", "XACK", "XDEL", "XRANGE", "XPENDING", "XCLAIM", "XAUTOCLAIM", "XLEN",
}
#: Commands that take no key (or whose keys are checked apart: XREADGROUP's STREAMS).
KEYLESS_COMMANDS = {"TIME", "XREADGROUP"}

_CALL = re.compile(r"redis\.call\('([A-Z]+)'(.*)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _first_arg(rest: str) -> str:
    """The first argument after the command name: up to a comma or `)` at depth 0."""
    rest = rest.lstrip(", ")
    depth = 0
    for n, ch in enumerate(rest):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                return rest[:n].strip()
            depth -= 1
        elif ch == "," and depth == 0:
            return rest[:n].strip()
    return rest.strip()


def _split(exprs: str) -> list[str]:
    """Comma-separated expressions, split at depth 0 only."""
    out, depth, start = [], 0, 0
    for n, ch in enumerate(exprs):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(exprs[start:n].strip())
            start = n + 1
    out.append(exprs[start:].strip())
    return out


def _key_bound(text: str) -> set[str]:
    """Names that hold keys: assigned from KEYS (or from such a name), or a function's
    parameter that every call passes a key to (a function nobody calls reaches nothing)."""
    bound: set[str] = set()
    assignments = [([n.strip() for n in lhs.split(",")], _split(rhs)) for lhs, rhs in
                   re.findall(r"^[ \t]*(?:local[ \t]+)?([\w ,]+?)[ \t]*=[ \t]*(.+)$", text, re.M)]
    while True:
        before = len(bound)
        for names, values in assignments:
            for name, value in zip(names, values, strict=False):
                if _is_key(value, bound) or (value.startswith("{") and value.endswith("}")
                                              and all(_is_key(v, bound)
                                                      for v in _split(value[1:-1]))):
                    bound.add(name)
        for fn, params in re.findall(r"local function (\w+)\(([^)]*)\)", text):
            calls = [_split(c) for c in re.findall(rf"(?<!function ){fn}\(([^)]*)\)", text)]
            for i, name in enumerate(p.strip() for p in params.split(",")):
                if all(len(c) > i and _is_key(c[i], bound) for c in calls):
                    bound.add(name)
        if len(bound) == before:
            return bound


def _is_key(expr: str, bound: set[str]) -> bool:
    if expr.startswith("KEYS["):
        return True
    base = _IDENT.match(expr)
    return bool(base) and base.group(0) in bound and "ARGV" not in expr and ".." not in expr


def _script_files() -> list[Path]:
    return sorted(LUA.glob("*.lua"))


def test_every_script_is_a_file_and_loads():
    names = scripts.names()
    assert names == [p.stem for p in _script_files()]
    assert {"take", "settle", "promote", "enqueue", "bulk", "cancel"} <= set(names)
    source = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    for name in names:
        assert f'scripts.load("{name}")' in source, f"{name}.lua is loaded by no module"
        assert "redis.call" in scripts.load(name)


@pytest.mark.parametrize("path", _script_files(), ids=lambda p: p.stem)
def test_every_script_documents_keys_argv_and_reply(path: Path):
    text = path.read_text()
    header = text.split("\n\n", 1)[0].splitlines()
    assert all(line.startswith("--") for line in header), f"{path.name}: header first"
    for what in ("-- KEYS:", "-- ARGV:", "-- Returns", "-- Slots:"):
        assert any(line.startswith(what) for line in header), f"{path.name}: no {what}"


def test_preludes_exist_and_are_used():
    used = {p for path in _script_files() for p in scripts.uses(path.read_text())}
    libs = {p.stem for p in (LUA / "lib").glob("*.lua")}
    assert used <= libs | {"names"}
    assert libs <= used, f"preludes no script uses: {libs - used}"
    for lib in libs:
        assert (LUA / "lib" / f"{lib}.lua").read_text().startswith("-- Prelude")


@pytest.mark.parametrize("name", scripts.names())
def test_scripts_touch_only_the_keys_they_are_given(name: str):
    text = scripts.load(name)
    header = (LUA / f"{name}.lua").read_text().split("\n\n", 1)[0]
    keys_doc = header.split("-- KEYS:", 1)[1].split("-- ARGV:", 1)[0]
    declared = {int(n) for n in re.findall(r"(?:^|[:,]\s*|\s)(\d+)\s+[a-z]", keys_doc)}
    for n in map(int, re.findall(r"KEYS\[(\d+)\]", text)):
        assert n in declared, f"{name}: KEYS[{n}] is not in its header"
    bound = _key_bound(text)
    calls = _CALL.findall(text)
    assert calls
    for command, rest in calls:
        assert command in KEY_COMMANDS | KEYLESS_COMMANDS, f"{name}: classify {command}"
        if command in KEY_COMMANDS:
            arg = _first_arg(rest)
            assert _is_key(arg, bound), f"{name}: {command} on {arg!r}, not a declared key"
    for arg in re.findall(r"'STREAMS',\s*([^,)]+)", text):
        assert _is_key(arg.strip(), bound), f"{name}: XREADGROUP on {arg!r}"


@pytest.mark.parametrize("name", scripts.names())
def test_no_key_names_are_built_in_lua(name: str):
    body = "\n".join(line.split("--", 1)[0] for line in scripts.load(name).splitlines())
    # A literal like ':q:', ':senders' or '{' joined with `..` is a key name in the making.
    assert not re.search(r"\.\.\s*'[^']*(?::[a-z]|[{}])", body), name
    assert not re.search(r"'[^']*(?::[a-z]|[{}])[^']*'\s*\.\.", body), name
    assert "prefix" not in body, name


def test_every_key_builder_is_used():
    builders = [name for name, _ in inspect.getmembers(Keys) if not name.startswith("_")
                and name != "prefix"]
    assert {"stream", "lease", "janitor", "campaign"} <= set(builders)
    # The package, and the test helpers (`daily` names the patterns they clean up).
    files = [p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "queue" / "keys.py"]
    files.append(PACKAGE.parent / "tests" / "e2e_helpers.py")
    source = "\n".join(p.read_text() for p in files)
    for name in builders:
        if name in PENDING_KEYS:
            continue
        assert re.search(rf"\b(?:keys|k)\.{name}\b", source), f"Keys.{name} is used nowhere"


def test_no_key_names_built_outside_keys_py():
    for path in (PACKAGE / "queue").glob("*.py"):
        if path.name == "keys.py":
            continue
        text = path.read_text()
        assert not re.search(r"""f["']\{[^}]*prefix\}:""", text), path.name
    assert not re.search(r"""f["']\{[^}]*prefix\}:""", (PACKAGE / "producer.py").read_text())


def test_module_constants_hold_the_loaded_text():
    """bench/benchmark.py names EVALSHA by these constants' SHA1."""
    from dreams_sms import producer
    from dreams_sms.queue import control, delayed, lease, quota, rate, store

    assert scripts.load("take") == lease._TAKE
    assert scripts.load("settle") == store._SETTLE
    assert scripts.load("promote") == delayed._PROMOTE
    assert scripts.load("bulk") == producer._BULK
    assert scripts.load("acquire") == control._ACQUIRE
    assert quota._RESERVE.startswith(scripts.prelude("expire_at"))
    assert scripts.load("gcra") == rate._GCRA


def test_names_prelude_spells_the_python_names():
    names = scripts.prelude("names")
    for value in (cf.TOTAL, cf.DEFERRED, cf.CANCELLED_AT, cf.ROWS, cf.CREATED):
        assert f"'{value}'" in names
    assert cf.failure(-117) == "f:-117" and cf.failure_code("f:-117") == -117
    assert cf.failure_code(cf.TOTAL) is None


def test_job_from_values_is_from_fields():
    job = Job("c1-7", "0551234567", "hi", options={"a": "b"}, expires_at=5.5, first_at=1.0)
    f = job.fields()
    values = [f.get(k, "") for k in ("i", "t", "m", "o", "x", "a")]
    assert Job.from_values(values) == Job.from_fields(f)
    bare = Job("c1-8", "0551234567", "")
    assert Job.from_values(["c1-8", "0551234567", "", "", "", ""]) == bare


def _delay(r: redis.Redis, keys: Keys, job: Job, due: float) -> None:
    r.zadd(keys.delayed, {job.pack(): due})
    r.hset(keys.status(job.campaign), job.seq, f"D:{due}")
    r.hincrby(keys.campaign(job.campaign), cf.DEFERRED, 1)


def test_promote_moves_each_due_job_of_every_sender_once(r: redis.Redis):
    keys = Keys()
    jobs = [Job("c1-1", "0551", "a", sender="A"), Job("c1-2", "0552", "b", sender="B", high=True),
            Job("c2-1", "0553", "c", sender="A", expires_at=99.0), Job("c2-2", "0554", "d",
                                                                           sender="A")]
    for n, job in enumerate(jobs[:3]):
        _delay(r, keys, job, 10.0 + n)
    _delay(r, keys, jobs[3], 100.0)  # not due yet
    d = Delayed(r, keys)
    assert d.promote(50.0) == 3
    assert d.promote(50.0) == 0
    assert d.size() == 1
    assert r.smembers(keys.senders) == {"A", "B"}
    assert r.xlen(keys.stream("A")) == 2 and r.xlen(keys.stream("B", True)) == 1
    [(_, f)] = r.xrange(keys.stream("B", True))
    assert f == jobs[1].fields()
    assert r.hget(keys.campaign("c1"), cf.DEFERRED) == "0"
    assert r.hget(keys.campaign("c2"), cf.DEFERRED) == "1"
    assert r.hgetall(keys.status("c1")) == {}
    assert r.hget(keys.status("c2"), "2") == "D:100.0"


def test_promote_leaves_what_another_beat_moved(r: redis.Redis):
    """Read, then removed by someone else before the move: never added twice."""
    keys = Keys()
    job = Job("c1-1", "0551", "a", sender="A")
    _delay(r, keys, job, 1.0)
    d = Delayed(r, keys)
    raw = job.pack()
    moved = d._promote(keys=[keys.delayed, keys.senders, *keys.streams("A")],
                       args=["A", raw, "0", "0", ""])
    assert moved == 1
    assert d._promote(keys=[keys.delayed, keys.senders, *keys.streams("A")],
                      args=["A", raw, "0", "0", ""]) == 0
    assert r.xlen(keys.stream("A")) == 1
    ensure_group(r, keys.stream("A"), set())
    assert json.loads(raw)["i"] == "c1-1"
