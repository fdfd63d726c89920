"""End to end: `dreams-sms bulk` as a real process against a real stack.

Files mix bad rows of every kind with good ones; the command must name each
bad row by its line, and the sandbox must end up holding exactly the good
rows, once each.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from e2e_helpers import wait_for

from dreams_sms.sandbox.testing import SandboxAdmin

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
SPELLINGS = ("05{}", "+9665{}", "9665{}", "5{}", "00966 5{}", "05{}")


def bulk(stack, path: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "dreams_sms", "bulk", str(path), "--sender", "Dreams",
           "--yes", *args]
    return subprocess.run(cmd, env=stack.env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def campaign_of(out: str) -> str:
    line = next(ln for ln in out.splitlines() if ln.startswith("campaign ") and "queued" in ln)
    return line.split()[1].rstrip(":")


def good_row(i: int) -> tuple[str, str, str]:
    """(as written in the file, normalised number, text)."""
    digits = f"{i:08d}"
    text = f"bulk {i}: hello" if i % 3 else f"حملة {i}, مرحبا"
    return SPELLINGS[i % len(SPELLINGS)].format(digits), f"9665{digits}", text


class FileBuilder:
    """Writes physical lines and remembers where each bad row landed."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.bad: dict[int, str] = {}  # line number -> what kind of bad
        self.expected: Counter[tuple[str, str]] = Counter()

    def add(self, line: bytes | str) -> int:
        self.lines.append(line.encode() if isinstance(line, str) else line)
        return len(self.lines)

    def good(self, raw: str, to: str, text: str, line: bytes | str) -> None:
        self.add(line)
        self.expected[(to, text)] += 1

    def add_bad(self, kind: str, line: bytes | str) -> None:
        self.bad[self.add(line)] = kind

    def write(self, path: Path) -> Path:
        path.write_bytes(b"\n".join(self.lines) + b"\n")
        return path


def csv_file(tmp_path: Path, n: int = 500) -> FileBuilder:
    f = FileBuilder()
    f.add("number,text")
    bad_rows = {
        40: ("short number", "12345,too short"),
        90: ("foreign number", "+15551234567,foreign"),
        140: ("letters", "05512abc67,letters"),
        200: ("empty text", "0551239999,"),
        260: ("non-UTF-8", b"0551238888,caf\xe9 cr\xe8me"),
        320: ("missing column", "0551237777"),
        380: ("overlong text", "0551236666," + "x" * 2000),
        430: ("extra column", "0551235555,hi,there"),
    }
    for i in range(n):
        if i in bad_rows:
            f.add_bad(*bad_rows[i])
        raw, to, text = good_row(i)
        if i == 7:  # a quoted text spanning two lines shifts every line number after it
            text = "two\nlines"
            f.add(f'{raw},"two')
            f.good(raw, to, text, 'lines"')
        elif "," in text:
            f.good(raw, to, text, f'{raw},"{text}"')
        else:
            f.good(raw, to, text, f"{raw},{text}")
    return f


def sent(admin: SandboxAdmin) -> Counter[tuple[str, str]]:
    msgs = admin.messages()
    assert {m["sender"] for m in msgs} <= {"Dreams"}
    return Counter((m["to"], m["text"]) for m in msgs)


def check_output(out: str, f: FileBuilder) -> None:
    named = {int(ln.split()[1].rstrip(":")) for ln in out.splitlines()
             if ln.startswith("  line ")}
    assert named == set(f.bad), f"bad rows named: {sorted(named)}, written: {f.bad}"


def test_csv_with_bad_rows_sends_exactly_the_good_ones(stack, admin, p, tmp_path):
    f = csv_file(tmp_path)
    path = f.write(tmp_path / "campaign.csv")
    res = bulk(stack, path)
    assert res.returncode == 0, res.stdout + res.stderr + stack.logs()[-4000:]
    assert "Traceback" not in res.stderr
    assert f"500 valid, {len(f.bad)} bad" in res.stdout
    check_output(res.stdout, f)
    assert "not valid UTF-8" in res.stdout and "missing field(s)" in res.stdout
    cid = campaign_of(res.stdout)
    assert f"campaign {cid} done: sent 500, failed 0" in res.stdout
    st = p.campaign_status(cid)
    assert (st.total, st.sent, st.queued, st.sending, st.deferred) == (500, 500, 0, 0, 0)
    assert sent(admin) == f.expected
    assert sum(f.expected.values()) == 500


def test_jsonl_with_bad_rows(stack, admin, p, tmp_path):
    f = FileBuilder()
    bad_rows = {
        10: ("invalid JSON", '{"to": "0551230000", "text": '),
        30: ("array", '["0551230001", "array"]'),
        50: ("bad number", json.dumps({"to": "0512", "text": "short"})),
        70: ("no text", json.dumps({"to": "0551230002"})),
        90: ("non-UTF-8", b'{"to": "0551230003", "text": "caf\xe9"}'),
        110: ("overlong", json.dumps({"to": "0551230004", "text": "y" * 1600})),
        130: ("unknown field", json.dumps({"to": "0551230005", "text": "x", "colour": 1})),
    }
    for i in range(200):
        if i in bad_rows:
            f.add_bad(*bad_rows[i])
        if i == 100:
            f.add("")  # blank lines are skipped, but still counted as lines
        raw, to, text = good_row(i)
        key = "number" if i % 2 else "to"
        f.good(raw, to, text, json.dumps({key: raw, "text": text}, ensure_ascii=i % 4 == 0))
    path = f.write(tmp_path / "campaign.jsonl")
    res = bulk(stack, path)
    assert res.returncode == 0, res.stdout + res.stderr + stack.logs()[-4000:]
    assert f"200 valid, {len(f.bad)} bad" in res.stdout
    check_output(res.stdout, f)
    cid = campaign_of(res.stdout)
    assert p.campaign_status(cid).sent == 200
    assert sent(admin) == f.expected


def test_detach_returns_before_the_campaign_is_done(stack, admin, p, tmp_path):
    f = csv_file(tmp_path, n=300)
    path = f.write(tmp_path / "detached.csv")
    p.pause("Dreams")  # so "before completion" is certain, not a race
    res = bulk(stack, path, "--detach", "--campaign", "detached_1", timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert campaign_of(res.stdout) == "detached_1"
    assert "dreams-sms status detached_1" in res.stdout
    assert "done:" not in res.stdout and "[" not in res.stdout  # no progress bar
    st = p.campaign_status("detached_1")
    assert (st.total, st.sent) == (300, 0)
    assert admin.messages() == []
    p.resume("Dreams")
    wait_for(lambda: p.campaign_status("detached_1").done, 120, "the detached campaign", stack)
    assert sent(admin) == f.expected
