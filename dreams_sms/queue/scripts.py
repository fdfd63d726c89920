"""The Lua scripts of the Redis data model, one `.lua` file each under `queue/lua/`.

Each script's header comment says what its KEYS and ARGV are, what it returns
and which hash slots it touches. A `-- uses: a, b` line names the preludes the
loader puts in front of it: `lib/<name>.lua` files (stream fields, lease
helpers, ...), and `names`, built here from `fields.py` and `jobs.py` so the
campaign field names and status codes are spelled once, in Python. Every piece
of Lua is thus written once, and callers keep passing the same KEYS and ARGV.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from dreams_sms.queue import fields as cf
from dreams_sms.queue import jobs

_USES = re.compile(r"^-- uses: *(.+)$", re.MULTILINE)
_NAME = re.compile(r"^[a-z_]+$")


def _lua_string(value: str) -> str:
    if "'" in value or "\\" in value or "\n" in value:
        raise ValueError(f"not a plain name: {value!r}")
    return f"'{value}'"


def _names() -> str:
    """`CF` (campaign hash fields) and `ST` (status codes) for the Lua side."""
    campaign = {k: v for k, v in vars(cf).items() if k.isupper() and isinstance(v, str)}
    items = [f"{k} = {_lua_string(v)}" for k, v in sorted(campaign.items())]
    items.append("DONE = {" + ", ".join(_lua_string(v) for v in cf.DONE) + "}")
    states = [f"{name.upper()} = {_lua_string(code)}"
              for code, name in sorted(jobs.STATE_NAMES.items(), key=lambda kv: kv[1])]
    return ("-- Prelude `names`, built from queue/fields.py and queue/jobs.py.\n"
            "local CF = {" + ", ".join(items) + "}\n"
            "local ST = {" + ", ".join(states) + "}\n")


def _read(path: str) -> str:
    if not all(_NAME.match(part) for part in path.split("/")):
        raise ValueError(f"not a script name: {path!r}")
    return resources.files("dreams_sms.queue").joinpath(f"lua/{path}.lua").read_text("utf-8")


def uses(text: str) -> list[str]:
    """The preludes a script's `-- uses:` lines name, in order."""
    return [name.strip() for line in _USES.findall(text) for name in line.split(",")
            if name.strip()]


def prelude(name: str) -> str:
    """One prelude's text: `names` is built, the others are `lua/lib/<name>.lua`."""
    return _names() if name == "names" else _read(f"lib/{name}")


@cache
def load(name: str) -> str:
    """The full text of script `lua/<name>.lua`: its preludes, then the script."""
    text = _read(name)
    return "".join(prelude(p) + "\n" for p in uses(text)) + text


def names() -> list[str]:
    """Every script (not prelude) there is, by name."""
    root = resources.files("dreams_sms.queue").joinpath("lua")
    return sorted(p.name[:-4] for p in root.iterdir() if p.name.endswith(".lua"))
