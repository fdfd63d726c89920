"""Field names of a campaign hash (`Keys.campaign`), named once.

Python reads and writes them through these constants; the Lua scripts get the
same names from a prelude the loader builds from this module (`CF` in Lua, see
`scripts.py`), so a name is never spelled twice.
"""

from __future__ import annotations

from typing import Final

# Counters, moved by the scripts that queue and settle messages.
TOTAL: Final = "total"  # messages queued into the campaign, ever
SENT: Final = "sent"
FAILED: Final = "failed"
EXPIRED: Final = "expired"
UNKNOWN: Final = "unknown"  # held for an operator: may have reached the provider
CANCELLED: Final = "cancelled"
DEFERRED: Final = "deferred"  # waiting in the delayed set
#: Settled counters: a campaign whose sum of these reaches TOTAL is done (its keys expire).
DONE: Final = (SENT, FAILED, EXPIRED, UNKNOWN, CANCELLED)

# Facts about the campaign.
CREATED: Final = "created"  # when it was first queued (Redis' clock)
SENDER: Final = "sender"  # set by bulk imports: whose leases count as `sending`
ROWS: Final = "rows"  # rows of a bulk import read so far (what `resume` skips)
CANCELLED_AT: Final = "cancelled_at"

#: Per provider code failures: `f:<code>` counts the failures with that code.
FAILURE_PREFIX: Final = "f:"


def failure(code: int | str) -> str:
    """The counter of failures with provider code `code`."""
    return f"{FAILURE_PREFIX}{code}"


def failure_code(name: str) -> int | None:
    """The provider code a failure counter counts, or None for any other field."""
    if not name.startswith(FAILURE_PREFIX):
        return None
    code = name[len(FAILURE_PREFIX):]
    return int(code) if code.lstrip("-").isdigit() else None
