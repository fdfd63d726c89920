"""What application code imports: enqueue messages, read their status.

    from dreams_sms import producer
    mid = producer.send("0551234567", "Your code is 1234", "Dreams", priority="high",
                        expires_in=300, key="otp:42")
    cid = producer.send_bulk("Promo", rows)          # rows: an iterable, streamed
    producer.campaign_status(cid)

Every message is validated before anything is queued. A queued message is one
Redis stream entry; writes are pipelined in chunks, and one Celery task starts
a sender's drain chains, never one task per message.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any, cast

import redis

from dreams_sms.config import Settings
from dreams_sms.errors import BulkInterrupted, NotReplicated, ValidationError
from dreams_sms.provider import validate
from dreams_sms.queue import fields as cf
from dreams_sms.queue import scripts
from dreams_sms.queue.campaigns import CampaignIndex
from dreams_sms.queue.connect import connect, replicas, run_confirmed
from dreams_sms.queue.control import Control
from dreams_sms.queue.jobs import HIGH, NORMAL, Job
from dreams_sms.queue.keys import Keys, ensure_group
from dreams_sms.queue.redis_policy import check_eviction
from dreams_sms.queue.status import CampaignStatus as CampaignStatus  # re-exported: the API
from dreams_sms.queue.status import MessageStatus as MessageStatus  # returns these
from dreams_sms.queue.status import StatusReader
from dreams_sms.queue.store import Store
from dreams_sms.worker.app import make_app
from dreams_sms.worker.dispatch import kick

CHUNK = 1000
_MAX_REJECTED_KEPT = 1000

# The scripts (queue/lua/enqueue.lua, bulk.lua, cancel.lua: KEYS and ARGV in their headers).
_ENQUEUE = scripts.load("enqueue")
_BULK = scripts.load("bulk")
_CANCEL = scripts.load("cancel")


class BulkResult(str):
    """A campaign id that also says what happened to the rows."""

    queued: int
    rejected: list[tuple[int, str]]
    rejected_count: int

    def __new__(cls, campaign: str, queued: int = 0, rejected: list[tuple[int, str]] | None = None,
                rejected_count: int = 0) -> BulkResult:
        obj = super().__new__(cls, campaign)
        obj.queued = queued
        obj.rejected = rejected or []
        obj.rejected_count = rejected_count
        return obj

    @property
    def campaign(self) -> str:
        return str(self)


class Producer:
    def __init__(self, settings: Settings | None = None, *, r: redis.Redis | None = None,
                 app: Any = None):
        self.settings = settings or Settings.from_env()
        # No automatic retry: a write retried after its reply was lost would queue
        # twice; the caller hears of the failure instead (and may resume or reuse a key).
        self.r = r or connect(self.settings, retry=False)
        self._replicas = replicas(self.r, self.settings)
        if r is None:  # a client handed in is the caller's to vouch for
            check_eviction(self.r, allow=self.settings.allow_eviction)
        self.keys = Keys(self.settings.prefix)
        self.control = Control(self.r, self.keys, test_clock=self.settings.test_clock)
        self._app = app
        self._enqueue = self.r.register_script(_ENQUEUE)
        self._bulk = self.r.register_script(_BULK)
        self._cancel = self.r.register_script(_CANCEL)
        self._groups: set[str] = set()
        self.statuses = StatusReader(self.r, self.settings, self.control)
        self.store = Store(self.r, self.keys, ttl=self.settings.status_ttl)
        self.campaigns = CampaignIndex(self.r, self.keys)

    @property
    def app(self) -> Any:
        if self._app is None:
            self._app = make_app(self.settings)
        return self._app

    # -- enqueue ----------------------------------------------------------------
    def send(self, to: str, text: str, sender: str, *, send_at: dt.datetime | float | None = None,
             key: str | None = None, priority: str = NORMAL, expires_in: float | None = None,
             expires_at: dt.datetime | float | None = None, campaign: str | None = None,
             **sendsms_options: object) -> str:
        """Queue one message; returns its id at once. Same `key` within the
        window returns the first id and queues nothing more."""
        sender = validate.check_sender(sender)
        job = self._job(to, text, sendsms_options)
        high = _priority(priority)
        now = self.control.now()
        due, job.expires_at = validate.check_times(now, send_at=send_at, expires_in=expires_in,
                                                   expires_at=expires_at)
        cid = _campaign_id(campaign) if campaign else "m" + dt.datetime.fromtimestamp(
            now, self.settings.tz).strftime("%Y%m%d")
        mid, created = self._put(job, sender, cid, key=key, high=high, now=now, due=due)
        if created and not (due > now):
            self.kick(sender, want=1)  # one message: one chain (more join if more waits)
        return mid

    def _put(self, job: Job, sender: str, cid: str, *, key: str | None, high: bool, now: float,
             due: float = 0.0) -> tuple[str, int]:
        """One job through the Lua script: dedup key, stream or delayed set, counters."""
        if key is not None and (not isinstance(key, str) or not key or len(key) > 200):
            raise ValidationError("key must be a non-empty string of at most 200 characters",
                                  field="key")
        stream = self.keys.stream(sender, high)
        self._ensure_group(stream)
        fields = job.fields()
        fields.pop("i")
        keys = [self.keys.idem(key or "-"), self.keys.campaign(cid), stream, self.keys.senders,
                self.keys.delayed, self.keys.status(cid), self.keys.seqs, self.keys.campaigns]
        args = ["1" if key else "0", self.settings.key_window, cid, sender,
                due if due > now else 0, "1" if high else "0", _json(fields), f"{now:.3f}"]
        wait = self._replicas.wait_args() if self._replicas else None
        if wait is None:
            mid, created = self._enqueue(keys=keys, args=args)
        else:
            (mid, created), acks = run_confirmed(self.r, self._enqueue, keys, args, wait)
            if acks < wait[0]:
                raise NotReplicated(f"message {mid} (queued on the master, which a failover "
                                    "may forget; sending again with the same key is safe)",
                                    acks, wait[0])
        return mid, int(created)

    def send_bulk(self, sender: str, rows: Iterable[Any], *, campaign: str | None = None,
                  priority: str = NORMAL, expires_in: float | None = None,
                  expires_at: dt.datetime | float | None = None,
                  resume: bool = False) -> BulkResult:
        """Queue many messages from an iterable of rows, streamed in chunks.

        A row is `(to, text)`, `(to, text, options)`, a mapping with `to`
        (or `number`) and `text` (or `message`) plus sendsms options, or a
        `bulkfile.Row`. Bad rows are reported by index; the rest is queued.

        Chunks are committed as rows are read. If reading or Redis fails midway,
        `BulkInterrupted` says how many rows were committed; call again with the
        same rows, `campaign=exc.campaign` and `resume=True` to queue the rest,
        never a row twice.
        """
        sender = validate.check_sender(sender)
        high = _priority(priority)
        if rows is None or isinstance(rows, str | bytes | Mapping) or not hasattr(rows, "__iter__"):
            raise ValidationError("rows must be an iterable of rows (tuples or mappings)",
                                  field="rows")
        cid = _campaign_id(campaign) if campaign else "c" + secrets.token_hex(5)
        now = self.control.now()
        _, expiry = validate.check_times(now, expires_in=expires_in, expires_at=expires_at)
        stream = self.keys.stream(sender, high)
        self._ensure_group(stream)
        skip = 0
        if resume:
            if not campaign:
                raise ValidationError("resume=True needs the campaign id of the interrupted "
                                      "import", field="campaign")
            skip = int(self.r.hget(self.keys.campaign(cid), cf.ROWS) or 0)
        self.r.hset(self.keys.campaign(cid), mapping={cf.SENDER: sender, cf.CREATED: f"{now:.3f}",
                                                      cf.ROWS: skip})
        self.r.hsetnx(self.keys.campaign(cid), cf.TOTAL, 0)
        self.campaigns.add(cid, now)
        # Once per import: forget listed campaigns whose hash expired since.
        self.campaigns.prune(now - self.settings.status_ttl)
        rejected: list[tuple[int, str]] = []
        counts = {"queued": 0, "rejected": 0}

        def chunk_args(chunk: list[tuple[int, Any]]) -> list[str]:
            """Validate one chunk into the bulk script's arguments (no objects per row)."""
            args = [sender, cid, repr(expiry) if expiry is not None else "",
                    str(chunk[-1][0] + 1)]
            for index, row in chunk:
                try:
                    to, text, options, key = _row(row)
                    number, text, opts = self._checked(to, text, options)
                    if key is not None:  # idempotent rows take the one-by-one path
                        job = Job("", number, text, options=opts, expires_at=expiry)
                        counts["queued"] += self._put(job, sender, cid, key=key, high=high,
                                                      now=now)[1]
                        continue
                except ValidationError as exc:
                    counts["rejected"] += 1
                    if len(rejected) < _MAX_REJECTED_KEPT:
                        rejected.append((index, str(exc)))
                    continue
                args += (number, text, _json(opts) if opts else "")
            return args

        keys = [stream, self.keys.campaign(cid), self.keys.senders, self.keys.seqs]
        sent_any = False
        todo = islice(enumerate(rows), skip, None)
        kept = skip  # rows the replicas required confirmed (all rows without replicas)
        try:
            for n, through in _pipelined(self.r, _BULK, keys,
                                         map(chunk_args, _chunks(todo, CHUNK)),
                                         self._replicas.wait_args() if self._replicas else None):
                counts["queued"] += n
                kept = through
                if n and not sent_any:
                    self.kick(sender)  # start sending while the rest is still being queued
                    sent_any = True
        except NotReplicated as exc:  # on the master, maybe not after a failover
            raise BulkInterrupted(cid, kept, exc) from exc
        except (redis.RedisError, OSError, ValueError, TypeError, UnicodeError) as exc:
            raise BulkInterrupted(cid, self._committed_rows(cid), exc) from exc
        if self.r.hget(self.keys.campaign(cid), cf.TOTAL) in (None, "0"):
            # Nothing waits in it: it goes in a while. Otherwise it lives until its
            # last message is settled (see store), however long that takes.
            self.r.expire(self.keys.campaign(cid), self.settings.status_ttl)
        queued, rejected_count = counts["queued"], counts["rejected"]
        if queued:
            self.kick(sender)
        return BulkResult(cid, queued, rejected, rejected_count)

    def _committed_rows(self, cid: str) -> int | None:
        try:
            return int(self.r.hget(self.keys.campaign(cid), cf.ROWS) or 0)
        except redis.RedisError:
            return None  # Redis is away: `resume=True` reads it when it is back

    def kick(self, sender: str, want: int | None = None) -> int:
        """Make sure drain chains are running for `sender` (`want` of them at most)."""
        if self.control.paused(sender):
            return 0
        return kick(self.app, self.control, self.settings, sender, want)

    def _job(self, to: object, text: object, options: Mapping[str, object]) -> Job:
        number, text, opts = self._checked(to, text, options)
        return Job("", number, text, options=opts)

    def _checked(self, to: object, text: object, options: Mapping[str, object]
                 ) -> tuple[str, str, dict[str, str]]:
        """(number, text, options) as they will be sent; raises ValidationError."""
        return (validate.normalize_number(to),  # type: ignore[arg-type]
                validate.check_text(text, max_length=self.settings.max_text_length,
                                    max_segments=self.settings.max_segments),
                validate.check_options(options) if options else {})

    def _ensure_group(self, stream: str) -> None:
        ensure_group(self.r, stream, self._groups)

    # -- status -------------------------------------------------------------------
    def status(self, message_id: str) -> MessageStatus:
        """Where one message stands: queued, sending, sent, deferred, failed (with
        the provider's code and meaning), expired or unknown."""
        return self.statuses.message(message_id)

    def campaign_status(self, campaign: str) -> CampaignStatus:
        """A campaign's counts; `deferred` includes what waits for tomorrow's quota."""
        return self.statuses.campaign(campaign)

    # -- control ------------------------------------------------------------------
    def cancel(self, campaign: str) -> None:
        """Stop what a campaign has queued: those jobs are dropped as `cancelled` when
        a worker reaches them (in flight at that moment: at most one call per slot).
        Messages sent to the same campaign id afterwards are delivered as usual."""
        cid = str(campaign)
        if not self.r.exists(self.keys.campaign(cid)):
            raise ValidationError(f"unknown campaign {cid[:60]!r}", field="campaign")
        self._cancel(keys=[self.keys.seqs, self.keys.cancelled, self.keys.campaign(cid)],
                     args=[cid, f"{self.control.now():.3f}"])
        # Decoded replies (decode_responses=True, as Producer's own client): str.
        sender = cast("str | None", self.r.hget(self.keys.campaign(cid), cf.SENDER))
        if sender:
            self.kick(sender)  # settle its jobs even while the queue is quiet

    def pause(self, sender: str | None = None, reason: str = "operator") -> None:
        self.control.pause(sender=sender, reason=reason, by="producer")

    def resume(self, sender: str | None = None) -> None:
        self.control.resume(sender=sender)
        if sender:
            targets = [sender]
        else:  # decoded replies (decode_responses=True): str members
            targets = sorted(cast("set[str]", self.r.smembers(self.keys.senders)))
        for s in targets:
            self.kick(s)


def _priority(priority: str) -> bool:
    if priority not in (HIGH, NORMAL):
        raise ValidationError(f"priority must be 'high' or 'normal', not {priority!r:.40}",
                              field="priority")
    return priority == HIGH


def _campaign_id(value: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not all(
            c.isalnum() or c in "_." for c in value):
        raise ValidationError("campaign must be 1-64 letters, digits, '_' or '.'",
                              field="campaign")
    return value


def _row(row: Any) -> tuple[object, object, Mapping[str, object], str | None]:
    if hasattr(row, "to") and hasattr(row, "text"):
        return row.to, row.text, getattr(row, "options", None) or {}, getattr(row, "key", None)
    if isinstance(row, Mapping):
        d = dict(row)
        to = d.pop("to", None) if "to" in d else d.pop("number", None)
        text = d.pop("text", None) if "text" in d else d.pop("message", None)
        key = d.pop("key", None)
        return to, text, d, key
    if isinstance(row, tuple | list) and len(row) in (2, 3):
        return row[0], row[1], (row[2] if len(row) == 3 else {}) or {}, None
    raise ValidationError(f"a row must be (to, text) or a mapping, not {type(row).__name__}",
                          field="row")


def _pipelined(r: redis.Redis, script: str, keys: list[str], arg_lists: Iterator[list[str]],
               confirm: tuple[int, int] | None = None) -> Iterator[tuple[int, int]]:
    """Run `script` once per argument list, validating the next chunk while
    Redis runs the previous one (send, build the next, then read). Yields
    (jobs queued, rows read through that chunk); with `confirm`, each chunk is
    followed by `WAIT` and a chunk the replicas did not confirm raises."""
    sha = r.script_load(script)
    try:
        conn = r.connection_pool.get_connection()
    except TypeError:  # redis-py < 5.3 wants a command name
        conn = r.connection_pool.get_connection("EVALSHA")
    pending: list[str] | None = None
    try:
        for args in arg_lists:
            if len(args) <= 4:
                continue  # every row of the chunk was refused
            if pending is not None:
                yield _reply(conn, script, sha, keys, pending, confirm), int(pending[3])
            _send(conn, sha, keys, args, confirm)
            pending = args
        if pending is not None:
            yield _reply(conn, script, sha, keys, pending, confirm), int(pending[3])
    except BaseException:
        conn.disconnect()  # a reply may still be in flight: never reuse this socket
        raise
    finally:
        r.connection_pool.release(conn)


def _send(conn: Any, sha: str, keys: list[str], args: list[str],
          confirm: tuple[int, int] | None) -> None:
    conn.send_command("EVALSHA", sha, len(keys), *keys, *args)
    if confirm is not None:
        conn.send_command("WAIT", *confirm)


def _reply(conn: Any, script: str, sha: str, keys: list[str], args: list[str],
           confirm: tuple[int, int] | None, *, again: bool = True) -> int:
    """The reply to one `_send`, loading the script once if Redis forgot it
    (a restart, or a new master after a failover)."""
    try:
        n, missing = int(conn.read_response()), False
    except redis.ResponseError as exc:
        if "NOSCRIPT" not in str(exc) or not again:
            raise
        n, missing = 0, True
    acks = int(conn.read_response()) if confirm is not None else 0
    if missing:
        conn.send_command("SCRIPT", "LOAD", script)
        conn.read_response()
        _send(conn, sha, keys, args, confirm)
        return _reply(conn, script, sha, keys, args, confirm, again=False)
    if confirm is not None and acks < confirm[0]:
        raise NotReplicated(f"{n} messages of a bulk chunk", acks, confirm[0])
    return n


def _chunks(it: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(it)
    while chunk := list(islice(it, size)):
        yield chunk


def _json(fields: Mapping[str, str]) -> str:
    import json

    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


_default: Producer | None = None


def _producer() -> Producer:
    global _default
    if _default is None:
        _default = Producer()
    return _default


def send(to: str, text: str, sender: str, **kwargs: Any) -> str:
    return _producer().send(to, text, sender, **kwargs)


def send_bulk(sender: str, rows: Iterable[Any], **kwargs: Any) -> BulkResult:
    return _producer().send_bulk(sender, rows, **kwargs)


def status(message_id: str) -> MessageStatus:
    return _producer().status(message_id)


def campaign_status(campaign: str) -> CampaignStatus:
    return _producer().campaign_status(campaign)
