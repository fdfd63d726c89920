"""`dreams-sms bulk FILE`: check a campaign file, show its cost, queue it, follow it.

The file is read twice and never held in memory: a first pass counts valid
rows, billed segments and bad rows so the operator sees every problem and
the cost before anything is queued; a second pass queues the valid rows.
Bad rows are skipped, not fatal, as long as one valid row remains.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import click
import redis

from dreams_sms.config import Settings
from dreams_sms.errors import DreamsError, ProviderError
from dreams_sms.ops.bulkfile import BadRow, Format, Row, Summary, read_rows, summarize
from dreams_sms.producer import CampaignStatus, Producer

#: Bad rows printed one by one; the rest are only counted.
SHOW_BAD = 50

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass(frozen=True)
class BulkOptions:
    """The command line, as parsed by click."""

    file: str
    sender: str
    fmt: Format | None = None  # click.Choice: one of Format's values
    campaign: str | None = None
    priority: str = "normal"
    yes: bool = False
    detach: bool = False
    max_bad: int | None = None


def run(opts: BulkOptions, settings: Settings) -> int:
    """The whole command; returns the exit status. Our errors, and Redis being
    unreachable, propagate to the CLI's group, which prints them as one line."""
    from dreams_sms.provider.validate import check_sender

    sender = check_sender(opts.sender)  # fail before reading a million rows
    producer = Producer(settings)
    return _run(opts, settings, producer, sender)


def _run(opts: BulkOptions, settings: Settings, producer: Producer, sender: str) -> int:
    cid = _new_campaign(producer, opts.campaign)
    if cid is None:
        return EXIT_USAGE

    summary = summarize(_rows(opts, settings))
    _print_check(opts.file, summary)
    if summary.valid == 0:
        _err(f"error: no valid row in {opts.file}: nothing to queue")
        return EXIT_FAILED
    if opts.max_bad is not None and summary.bad_count > opts.max_bad:
        _err(f"error: {summary.bad_count} bad rows, more than --max-bad {opts.max_bad}: "
             "nothing queued")
        return EXIT_FAILED

    lines, refusal = preflight(settings, sender, summary)
    for line in lines:
        click.echo(line)
    if refusal:
        _err(f"error: {refusal}: nothing queued")
        return EXIT_FAILED
    question = (f"Queue {summary.valid} messages ({summary.segments} segments) "
                f"from {sender} as campaign {cid}?")
    if not opts.yes:
        if not _stdin_is_tty():
            _err(f"error: not queueing {summary.valid} messages without confirmation: "
                 "there is no terminal to ask on; pass --yes")
            return EXIT_USAGE
        if not click.confirm(question, default=False):
            click.echo("nothing queued")
            return EXIT_FAILED

    status = _enqueue(producer, opts, settings, sender, cid, summary)
    if status is not None:
        return status
    if opts.detach:
        click.echo(f"detached; follow it with: dreams-sms status {cid}")
        return EXIT_OK
    return _follow(producer, cid, sender)


def _rows(opts: BulkOptions, settings: Settings) -> Iterator[Row | BadRow]:
    return read_rows(opts.file, fmt=opts.fmt, max_text_length=settings.max_text_length)


def _new_campaign(producer: Producer, wanted: str | None) -> str | None:
    """The campaign id, chosen now so it can be printed before a long enqueue.

    An existing id is refused: running the same command twice must not send
    the file twice.
    """
    from dreams_sms.producer import _campaign_id

    cid = _campaign_id(wanted) if wanted else "c" + secrets.token_hex(5)
    if producer.r.exists(producer.keys.campaign(cid)):
        _err(f"error: campaign {cid} already exists (see `dreams-sms status {cid}`); "
             "pick another --campaign")
        return None
    return cid


def _print_check(file: str, s: Summary) -> None:
    click.echo(f"checked {Path(file).name}: {s.total} rows, {s.valid} valid, "
               f"{s.bad_count} bad")
    if not s.bad_count:
        return
    click.echo("bad rows (skipped):")
    for bad in s.bad[:SHOW_BAD]:
        click.echo(f"  line {bad.line}: {bad.reason} | {bad.raw}")
    if s.bad_count > SHOW_BAD:
        click.echo(f"  ... and {s.bad_count - SHOW_BAD} more bad rows")


def preflight(settings: Settings, sender: str, s: Summary) -> tuple[list[str], str | None]:
    """Cost against balance, and the sender's state: (lines to print, refusal).

    When the provider says the sender is not an active one, every message
    would fail, so that is a refusal. A check that could not be made
    (no credentials, network) is reported and skipped: queueing does not need
    the provider, the workers do.
    """
    from dreams_sms.provider.client import DreamsClient

    lines = [f"cost: {s.segments} segments for {s.valid} messages"]
    try:
        settings.require_credentials()
        with DreamsClient(settings) as client:
            balance = client.balance()
            refusal = None
            try:
                state = client.sender_status(sender)
                if state.strip().lower() != "active":
                    refusal = (f"sender {sender} is {state.strip()}, not active: "
                               "its messages would fail")
            except ProviderError as exc:
                state = f"not usable ({exc})"
                refusal = f"sender {sender} is not an active sender of this account ({exc})"
            except DreamsError as exc:
                state = f"could not check ({exc}); going on"
    except DreamsError as exc:
        lines.append(f"balance: could not check ({exc}); going on")
        return lines, None
    if balance >= s.segments:
        lines.append(f"balance: {_num(balance)} (enough; {_num(balance - s.segments)} left after)")
    else:
        lines.append(f"balance: {_num(balance)}, NOT enough: {_num(s.segments - balance)} short; "
                     "sending pauses when it runs out, until the account is topped up")
    lines.append(f"sender {sender}: {state}")
    return lines, refusal


def _enqueue(producer: Producer, opts: BulkOptions, settings: Settings, sender: str, cid: str,
             summary: Summary) -> int | None:
    """Second pass: queue the valid rows. None on success, else the exit status."""
    click.echo(f"queueing campaign {cid} ...")
    rows = (row for row in _rows(opts, settings) if isinstance(row, Row))
    try:
        result = producer.send_bulk(sender, rows, campaign=cid, priority=opts.priority)
    except KeyboardInterrupt:
        _err(f"interrupted: campaign {cid} may be partly queued; "
             f"see `dreams-sms status {cid}`")
        return EXIT_INTERRUPTED
    except redis.RedisError as exc:
        from dreams_sms.ops.cli import redis_problem

        _err(f"error: {redis_problem(exc, settings.redis_url)} while queueing; campaign {cid} "
             f"may be partly queued; see `dreams-sms status {cid}`")
        return EXIT_FAILED
    click.echo(f"campaign {cid}: queued {result.queued} messages from {sender} "
               f"(priority {opts.priority})")
    if result.queued != summary.valid:
        _err(f"warning: the first pass found {summary.valid} valid rows but "
             f"{result.queued} were queued: did the file change?")
    for index, reason in result.rejected[:SHOW_BAD]:
        _err(f"  refused at enqueue: valid row #{index + 1}: {reason}")
    return None


def campaign_done(t: Mapping[str, float], closed_today: bool) -> bool:
    """Nothing left to send today: what is deferred waits for tomorrow's quota."""
    return t["queued"] == 0 and t["sending"] == 0 and (t["deferred"] == 0 or closed_today)


def _follow(producer: Producer, cid: str, sender: str, out: TextIO | None = None) -> int:
    from dreams_sms.ops.progress import follow

    out = out or sys.stdout
    last: list[CampaignStatus] = []
    pause_seen: list[str | None] = [None]

    def read() -> Sequence[CampaignStatus]:
        st = producer.campaign_status(cid)
        last[:] = [st]
        _note_pause(producer, sender, pause_seen, out)
        return last

    try:
        follow(read, until=lambda t: campaign_done(t, last[0].closed_today), out=out)
    except KeyboardInterrupt:
        _err(f"\nstopped following; campaign {cid} goes on: `dreams-sms status {cid}`")
        return EXIT_INTERRUPTED
    st = last[0]
    click.echo(f"campaign {cid} done: sent {st.sent}, failed {st.failed}, expired {st.expired}, "
               f"unknown {st.unknown}" + (f", deferred {st.deferred}" if st.deferred else ""))
    if st.failures:
        from dreams_sms.provider.codes import lookup

        for code, n in sorted(st.failures.items()):
            click.echo(f"  failed {code} ({lookup('sendsms_multi', code).description}): {n}")
    if st.deferred and st.closed_today:
        click.echo(f"  {st.deferred} wait for tomorrow's daily limit of {sender}")
    return EXIT_OK


def _note_pause(producer: Producer, sender: str, seen: list[str | None], out: TextIO) -> None:
    """Say once when sending is paused, or the bar would just stand still."""
    paused = producer.control.paused() or producer.control.paused(sender)
    reason = paused.get("reason", "paused") if paused else None
    if reason != seen[0]:
        if reason is not None:
            lead = "\n" if out.isatty() else ""
            _err(f"{lead}note: sending is paused ({reason}); the campaign waits "
                 "(`dreams-sms resume` when it should go on)")
        seen[0] = reason


def _num(x: float) -> str:
    """1000000 -> '1,000,000' (not '1e+06'); fractions keep two places."""
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def _stdin_is_tty() -> bool:
    try:  # (click.get_text_stream is deprecated from click 8.5)
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stdin
        return False


def _err(message: str) -> None:
    click.echo(message, err=True)
