"""Smoke run of the benchmark: `bench/benchmark.py --quick` completes, prints the
table and writes the markdown report. No timed assertions: the figures depend
on the machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "benchmark.py"


def test_quick_run_prints_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "report" / "BENCHMARKS.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DREAMS_", "CELERY"))}
    env.pop("REDIS_URL", None)  # the script starts its own redis-servers; make sure of it
    default = ROOT / "BENCHMARKS.md"
    before = default.stat().st_mtime_ns if default.exists() else None
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-6000:]}"

    # the table, on stdout
    for needle in ("## Results", "| measurement | this design | baseline | ratio | target | met |",
                   "1. enqueue rate", "2. Redis bytes per queued message",
                   "3. end to end @0 ms vs direct limit", "3. end to end @50 ms vs naive design",
                   "4. scaling @50 ms", "5. Redis memory with 5,000 queued",
                   "6. sandbox's own rate", "## Scaling at 50 ms", "## CPU during each run",
                   "7. OTP latency, idle queue, 20 one at a time: p50 / p90 ms after send()",
                   "p90 <= 80 ms (latency + 30)",
                   "7. OTP latency during a campaign of 5,000 (same sender)",
                   "p90 <= 130 ms (2 x latency + 30)",
                   "8. Redis round trips per provider batch @0 ms",
                   "8. Redis round trips per provider batch @50 ms",
                   "9. sender-side CPU per message @0 ms, us: workers vs direct client",
                   "> 42% (before the redesign)", ">= 90%",
                   "## OTP latency at 50 ms", "## Redis traffic per provider batch",
                   "with Redis MONITOR on", "`EVALSHA lease._TAKE`",
                   "## HTTP API", "NDJSON campaign of 2,000 rows, one POST /v1/campaigns",
                   "100 single POST /v1/messages at ",
                   "## Replicated lease (Redis with a replica)",
                   "| end to end @50 ms, 2,000 messages, one master + one replica"):
        assert needle in proc.stdout, needle
    # every new row carries a target and a verdict (or "(info)"), whatever the figures
    for line in proc.stdout.splitlines():
        if line.startswith(("| 7. ", "| 8. ")):
            assert line.rstrip().endswith(("| **yes** |", "| **NO** |")), line
        if line.startswith(("| NDJSON campaign of ", "| end to end @50 ms, 2,000 messages, one")):
            assert line.rstrip().endswith(("| **yes** |", "| **NO** |")), line
        if line.startswith("| 9. "):
            assert line.rstrip().endswith("| (info) | - |"), line

    # the same report, with the machine and the command line, in the file asked for
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks")
    assert "## Results" in text and "## Machine" in text
    for key in ("**CPU**", "**cores**", "**memory**", "**Python**", "**Redis**"):
        assert key in text, key
    assert "bench/benchmark.py --quick --output" in text
    assert text.strip() in proc.stdout
    # the repo's own BENCHMARKS.md is left alone by a run told to write elsewhere
    assert (default.stat().st_mtime_ns if default.exists() else None) == before
