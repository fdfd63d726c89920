"""A live progress line and a summary table for campaigns, plain terminal only."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from .producer import CampaignStatus


def totals(statuses: Sequence[CampaignStatus]) -> dict[str, int]:
    keys = ("total", "queued", "sending", "sent", "deferred", "failed", "expired", "unknown")
    return {k: sum(getattr(s, k) for s in statuses) for k in keys}


def bar(t: dict[str, int], rate: float, width: int = 30) -> str:
    total = max(t["total"], 1)
    done = t["sent"] + t["failed"] + t["expired"] + t["unknown"]
    filled = int(width * done / total)
    return (f"[{'#' * filled}{'.' * (width - filled)}] {100 * done / total:5.1f}%  "
            f"queued {t['queued']:>6}  sent {t['sent']:>6}  deferred {t['deferred']:>5}  "
            f"failed {t['failed']:>4}  {rate:7.0f}/s")


def follow(read: Callable[[], Sequence[CampaignStatus]], *, until: Callable[[dict], bool],
           timeout: float | None = None, out: TextIO = sys.stdout, every: float = 0.5) -> dict:
    """Redraw the bar until `until(totals)` holds; returns the last totals."""
    tty = out.isatty()
    started = last_print = time.monotonic()
    prev_sent, prev_t = 0, started
    rate = 0.0
    while True:
        t = totals(read())
        now = time.monotonic()
        if now - prev_t >= 1.0:
            rate = (t["sent"] - prev_sent) / (now - prev_t)
            prev_sent, prev_t = t["sent"], now
        finished = until(t)
        if finished and now > started:
            rate = t["sent"] / (now - started)  # the run's average, even if it took < 1 s
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
