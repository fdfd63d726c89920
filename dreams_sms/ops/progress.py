"""A live progress line and a summary table for campaigns, plain terminal only."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from dreams_sms.producer import CampaignStatus


def totals(statuses: Sequence[CampaignStatus]) -> dict[str, int]:
    keys = ("total", "queued", "sending", "sent", "deferred", "failed", "expired", "unknown")
    return {k: sum(getattr(s, k) for s in statuses) for k in keys}


def bar(t: Mapping[str, float], rate: float | None, width: int = 20) -> str:
    """One progress line. `queued` is what still waits (as in `dreams-sms status`);
    the percentage is of the campaigns' total; `rate` None until there is one."""
    total = max(t["total"], 1)
    done = t["sent"] + t["failed"] + t["expired"] + t["unknown"]
    filled = int(width * done / total)
    shown = f"{rate:7.0f}/s" if rate is not None else "      -/s"
    return (f"[{'#' * filled}{'.' * (width - filled)}] {100 * done / total:5.1f}%  "
            f"queued {t['queued']:>6}  sent {t['sent']:>6}  "
            f"deferred {t['deferred']:>5}  failed {t['failed']:>4}  {shown}")


def average_rate(sent: float, elapsed: float) -> float | None:
    """Sent per second since the start, once there is something to average:
    never a 0/s first reading."""
    if sent <= 0 or elapsed < 1.0:
        return None
    return sent / elapsed


def follow(read: Callable[[], Sequence[CampaignStatus]], *,
           until: Callable[[dict[str, float]], bool], timeout: float | None = None,
           out: TextIO = sys.stdout, every: float = 0.5,
           started: float | None = None) -> dict[str, float]:
    """Redraw the bar until `until(totals)` holds; returns the last totals, plus
    `elapsed` (s since `started`, a `time.monotonic()`, default now) and `rate`.

    The rate is one figure for the whole run, the average since `started`, so
    the bar's last reading and a summary built from the returned `rate` agree.
    """
    tty = out.isatty()
    started = time.monotonic() if started is None else started
    last_print = time.monotonic()
    while True:
        t: dict[str, float] = dict(totals(read()))
        now = time.monotonic()
        finished = until(t)
        t["elapsed"] = now - started
        rate = average_rate(t["sent"], t["elapsed"])
        if finished and rate is None and t["sent"] and t["elapsed"] > 0:
            rate = t["sent"] / t["elapsed"]  # a run shorter than a second still gets its average
        t["rate"] = rate or 0.0
        if tty:
            out.write("\r" + bar(t, rate))
            out.flush()
        elif finished or now - last_print >= 2.0:
            out.write(bar(t, rate) + "\n")
            out.flush()
            last_print = now
        if finished or (timeout is not None and now - started > timeout):
            if tty:
                out.write("\n")
            return t
        time.sleep(every)


def table(rows: Sequence[Sequence[object]], headers: Sequence[str], *,
          left: int = 1) -> str:
    """A boxed table; the first `left` columns are text (left-aligned), the rest
    numbers (right-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line]
    for n, row in enumerate(cells):
        out.append("| " + " | ".join(c.ljust(w) if i < left else c.rjust(w)
                                     for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                   + " |")
        if n == 0:
            out.append(line)
    out.append(line)
    return "\n".join(out)
