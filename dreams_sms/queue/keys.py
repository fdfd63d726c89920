"""Every Redis key the system uses, named in one place.

Nothing else builds a key name: Python asks `Keys`, and a Lua script gets every
key it touches in KEYS (tests/test_data_model.py checks both).

Hash slots (Redis Cluster). `{Sender}` is a hash tag, so a sender's keys share
one slot: its streams (`stream`, `streams`), `lease`, `quota`, `closed`,
`sender_paused` and `drains`. Every other key is in a slot of its own: the
global ones (`senders`, `campaigns`, `delayed`, `pauses`, `limits`, `limits_seed`,
`cancelled`, `seqs`, `held`, `clock`, `token`, `gcra`, `balance`, `stats`,
`janitor`, `redbeat`, `api_keys`), `idem` per key, `api_key` and `api_rate`
per API key, and per campaign `campaign` and
`status` (not tagged: not even the two of one campaign share a slot).

Scripts within one slot: release, hand_back, reserve, refund, close, acquire,
gcra. Scripts that reach outside their sender's slot (one `EVAL` across slots,
which a Cluster refuses; the layout stays as it is, for one Redis):

- take: the pause reasons, the test clock, both limit tables, the cancel hash;
- retake, renew: the test clock;
- settle: held, delayed, senders and the campaigns' hashes;
- settle_held: held, senders, the streams of any senders, campaigns' hashes;
- promote: delayed, senders and campaigns' hashes around one sender's streams;
- enqueue, bulk, cancel: the sequences, campaign hashes, senders, delayed,
  the idempotency key and cancel hash (enqueue also the campaign index), around
  at most one stream;
- prune_campaigns: the campaign index and campaign hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import redis

GROUP = "senders"  # the consumer group on every sender stream


def ensure_group(r: redis.Redis, stream: str, known: set[str]) -> None:
    """Create the stream and its consumer group once (from the start: id 0)."""
    if stream in known:
        return
    try:
        r.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    known.add(stream)


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "dreams"

    def stream(self, sender: str, high: bool = False) -> str:
        """One stream per sender (and a second one for high priority)."""
        return f"{self.prefix}:q:{{{sender}}}" + (":hi" if high else "")

    def streams(self, sender: str) -> tuple[str, str]:
        return self.stream(sender, True), self.stream(sender, False)

    @property
    def senders(self) -> str:
        return f"{self.prefix}:senders"

    def campaign(self, cid: str) -> str:
        return f"{self.prefix}:c:{cid}"

    def status(self, cid: str) -> str:
        return f"{self.prefix}:c:{cid}:s"

    @property
    def campaigns(self) -> str:
        """Campaign -> when its hash was created: the listing a dashboard reads. No TTL;
        a member whose campaign hash expired is skipped by readers and pruned later."""
        return f"{self.prefix}:campaigns"

    def idem(self, key: str) -> str:
        return f"{self.prefix}:k:{key}"

    @property
    def delayed(self) -> str:
        return f"{self.prefix}:delayed"

    @property
    def pauses(self) -> str:
        """Why all sending is paused: a hash of reason -> who and when."""
        return f"{self.prefix}:pauses"

    def sender_paused(self, sender: str) -> str:
        return f"{self.prefix}:paused:{{{sender}}}"

    def lease(self, sender: str) -> str:
        """Who may send each in-flight message of `sender` (see `lease`)."""
        return f"{self.prefix}:lease:{{{sender}}}"

    def quota(self, sender: str, ts: float, tz: ZoneInfo) -> str:
        """Sends counted for `sender` on the local day of `ts`."""
        return f"{self.prefix}:quota:{{{sender}}}:{_day(ts, tz)}"

    def closed(self, sender: str, ts: float, tz: ZoneInfo) -> str:
        """Set when the provider said -123 for `sender` on the local day of `ts`."""
        return f"{self.prefix}:closed:{{{sender}}}:{_day(ts, tz)}"

    def daily(self, sender: str = "*") -> tuple[str, str]:
        """Patterns matching `sender`'s quota and closed keys of every day ("*": any sender)."""
        return f"{self.prefix}:quota:{{{sender}}}:*", f"{self.prefix}:closed:{{{sender}}}:*"

    @property
    def limits(self) -> str:
        """Daily limits an operator set (`dreams-sms limits --set`): they win."""
        return f"{self.prefix}:limits"

    @property
    def limits_seed(self) -> str:
        """Daily limits from configuration, written by each worker at start."""
        return f"{self.prefix}:limits:config"

    def drains(self, sender: str) -> str:
        return f"{self.prefix}:drains:{{{sender}}}"

    @property
    def cancelled(self) -> str:
        """Campaigns an operator cancelled -> the last sequence number cancelled:
        jobs up to it are dropped, not sent; later sends to the id are delivered."""
        return f"{self.prefix}:cancel"

    @property
    def seqs(self) -> str:
        """Campaign -> its last message sequence number. No TTL, ever: a message id
        is never issued twice, however long ago its campaign's other keys expired."""
        return f"{self.prefix}:seq"

    @property
    def held(self) -> str:
        """Messages whose outcome is unknown, kept for an operator to review."""
        return f"{self.prefix}:held"

    @property
    def clock(self) -> str:
        return f"{self.prefix}:clock"

    @property
    def token(self) -> str:
        return f"{self.prefix}:oauth"

    @property
    def gcra(self) -> str:
        return f"{self.prefix}:gcra"

    @property
    def balance(self) -> str:
        return f"{self.prefix}:balance"

    @property
    def stats(self) -> str:
        return f"{self.prefix}:stats"

    @property
    def janitor(self) -> str:
        """Set for a minute by the beat that last forgot idle consumers: one per minute."""
        return f"{self.prefix}:janitor"

    def api_key(self, key_id: str) -> str:
        """One HTTP API key: the sha256 of its secret, name, senders (never the secret)."""
        return f"{self.prefix}:apikey:{key_id}"

    @property
    def api_keys(self) -> str:
        """The ids of every live HTTP API key (a set), for `dreams-sms keys list`."""
        return f"{self.prefix}:apikeys"

    def api_rate(self, key_id: str) -> str:
        """An API key's request rate (GCRA), shared by every API replica."""
        return f"{self.prefix}:apirate:{key_id}"

    @property
    def redbeat(self) -> str:
        """The prefix of celery-redbeat's keys (the beat schedule and its lock)."""
        return f"{self.prefix}:redbeat"


def _day(ts: float, tz: ZoneInfo) -> str:
    """The local calendar day of `ts` as YYYYMMDD: the provider's day, not UTC's."""
    return datetime.fromtimestamp(ts, tz).strftime("%Y%m%d")
