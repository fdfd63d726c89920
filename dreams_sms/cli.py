"""`dreams-sms`: the provider's endpoints, the queue and the demo from a shell.

Errors print the provider's meaning (code, endpoint, description), never a
traceback; the exit status is 1 for provider refusals and 2 for bad input or
configuration.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click
import redis

from .config import Settings, env_table
from .errors import (
    ConfigError,
    DreamsError,
    OAuthError,
    ProviderError,
    TransportError,
    ValidationError,
)


def _settings() -> Settings:
    return Settings.from_env()


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our errors into one clear line and an exit status."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ProviderError as exc:
            click.echo(f"error: {exc.endpoint} answered {exc.code}: {exc.description}", err=True)
            sys.exit(1)
        except (ConfigError, ValidationError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except (OAuthError, TransportError, DreamsError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except redis.RedisError as exc:
            from .redact import redact

            click.echo(f"error: Redis: {redact(str(exc))}", err=True)
            sys.exit(1)

    return wrapper


def _client():
    from .client import DreamsClient

    s = _settings()
    s.require_credentials()
    return DreamsClient(s)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dreams-sms")
def main() -> None:
    """Queue-backed bulk SMS for the Dreams SMS API."""


# -- provider endpoints ---------------------------------------------------------------
@main.command()
@friendly
def balance() -> None:
    """The account's balance (chk_balance)."""
    value = _client().balance()
    click.echo(f"{value:.2f}".rstrip("0").rstrip("."))


@main.group()
def senders() -> None:
    """Sender names: list, add, status."""


@senders.command("list")
@friendly
def senders_list() -> None:
    from .progress import table

    rows = [(s.text, s.status, "yes" if s.default else "", s.date, s.notes)
            for s in _client().senders()]
    click.echo(table(rows, ("sender", "status", "default", "date", "notes")) if rows
               else "no senders")


@senders.command("add")
@click.argument("name")
@friendly
def senders_add(name: str) -> None:
    """Request a new sender name (newsender)."""
    _client().new_sender(name)
    click.echo(f"requested sender {name}; it is active once the provider approves it")


@senders.command("status")
@click.argument("name")
@friendly
def senders_status(name: str) -> None:
    click.echo(f"{name}: {_client().sender_status(name)}")


@main.group()
def account() -> None:
    """Register, activate and check the account."""


@account.command("register")
@click.option("--user", required=True)
@click.option("--password", prompt=True, hide_input=True)
@click.option("--name", required=True)
@click.option("--mobile", required=True)
@click.option("--email", required=True)
@friendly
def account_register(user: str, password: str, name: str, mobile: str, email: str) -> None:
    from .client import DreamsClient

    DreamsClient(_settings()).register(user, password, name, mobile, email)
    click.echo(f"registered {user}; activate it with the code the provider sends")


@account.command("activate")
@click.argument("code")
@friendly
def account_activate(code: str) -> None:
    _client().activate(code)
    click.echo("account activated")


@account.command("check")
@friendly
def account_check() -> None:
    _client().check_user()
    click.echo("account is valid")


@main.group()
def token() -> None:
    """OAuth tokens: generate, refresh, revoke (values go to stdout only)."""


def _oauth():
    from .oauth import OAuthClient

    s = _settings()
    s.require_oauth()
    return OAuthClient(s)


@token.command("generate")
@friendly
def token_generate() -> None:
    click.echo(json.dumps(_oauth().generate().as_dict()))


@token.command("refresh")
@click.option("--refresh-token", envvar="DREAMS_REFRESH_TOKEN", required=True,
              help="or DREAMS_REFRESH_TOKEN")
@friendly
def token_refresh(refresh_token: str) -> None:
    click.echo(json.dumps(_oauth().refresh(refresh_token).as_dict()))


@token.command("revoke")
@click.option("--token", "value", envvar="DREAMS_TOKEN", required=True, help="or DREAMS_TOKEN")
@friendly
def token_revoke(value: str) -> None:
    _oauth().revoke(value)
    click.echo("token revoked")


SEND_OPTIONS = [
    click.option("--is-calander", is_flag=True, default=None),
    click.option("--calander-date"),
    click.option("--calander-time"),
    click.option("--reminder", type=int),
    click.option("--reminder-text"),
    click.option("--location-url"),
]


def _with_send_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(SEND_OPTIONS):
        fn = opt(fn)
    return fn


@main.command()
@click.argument("to")
@click.argument("text")
@click.option("--sender", required=True)
@click.option("--queue", is_flag=True, help="enqueue for the workers instead of sending now")
@click.option("--priority", type=click.Choice(["normal", "high"]), default="normal")
@_with_send_options
@friendly
def send(to: str, text: str, sender: str, queue: bool, priority: str, **options: Any) -> None:
    """Send one message now (sendsms), or --queue it."""
    from .validate import check_options, check_sender, check_text, normalize_number

    opts = check_options({k: v for k, v in options.items() if v is not None})
    if queue:
        from .producer import Producer

        mid = Producer(_settings()).send(to, text, sender, priority=priority, **opts)
        click.echo(f"queued {mid}")
        return
    result = _client().send(normalize_number(to), check_text(text), check_sender(sender), **opts)
    click.echo(f"sent: {getattr(result, 'body', result)}")


# -- the queue ------------------------------------------------------------------------
@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--sender", required=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]),
              help="default: from the file's extension")
@click.option("--campaign", help="campaign id (default: a new one)")
@click.option("--priority", type=click.Choice(["normal", "high"]), default="normal")
@click.option("--yes", is_flag=True, help="queue without asking")
@click.option("--detach", is_flag=True, help="return once queued instead of following")
@click.option("--max-bad", type=click.IntRange(min=0), help="queue nothing if more rows are bad")
@friendly
def bulk(**options: Any) -> None:
    """Check a CSV/JSONL file, show its cost, queue its valid rows, follow the campaign."""
    from .bulkcmd import BulkOptions, run

    sys.exit(run(BulkOptions(**options), _settings()))


@main.command()
@click.argument("campaign", required=False)
@friendly
def status(campaign: str | None) -> None:
    """A campaign's counts, or the state of the whole queue."""
    from .producer import Producer
    from .progress import table

    p = Producer(_settings())
    if campaign:
        if "-" in campaign and campaign.rsplit("-", 1)[1].isdigit():
            st = p.status(campaign)
            click.echo(f"{st.id}: {st.state}"
                       + (f" ({st.code}: {st.description})" if st.code else "")
                       + (f" {st.description}" if st.description and not st.code else ""))
            return
        s = p.campaign_status(campaign)
        click.echo(table([(s.id, s.sender, s.total, s.queued, s.sending, s.sent, s.deferred,
                           s.failed, s.expired, s.unknown)],
                         ("campaign", "sender", "total", "queued", "sending", "sent", "deferred",
                          "failed", "expired", "unknown")))
        for code, n in sorted(s.failures.items()):
            from .codes import lookup

            click.echo(f"  failed {code} ({lookup('sendsms_multi', code).description}): {n}")
        return
    paused = p.control.paused()
    click.echo(f"paused: {paused['reason']} (code {paused.get('code')})" if paused
               else "sending: running")
    rows = []
    for sender in sorted(p.r.smembers(p.keys.senders)):
        hi, lo = (p.r.xlen(k) for k in p.keys.streams(sender))
        sp = p.control.paused(sender)
        rows.append((sender, hi, lo, "paused" if sp else ""))
    click.echo(table(rows, ("sender", "high", "normal", "state")) if rows else "no senders yet")


@main.command()
@click.option("--sender", help="only this sender")
@friendly
def pause(sender: str | None) -> None:
    """Pause sending (all, or one sender). Jobs stay queued."""
    from .producer import Producer

    Producer(_settings()).pause(sender)
    click.echo(f"paused {sender or 'all senders'}")


@main.command()
@click.option("--sender", help="only this sender")
@friendly
def resume(sender: str | None) -> None:
    from .producer import Producer

    Producer(_settings()).resume(sender)
    click.echo(f"resumed {sender or 'all senders'}")


@main.command()
@click.argument("campaign")
@friendly
def cancel(campaign: str) -> None:
    """Cancel a campaign: what is still queued is dropped, never sent."""
    from .producer import Producer

    p = Producer(_settings())
    p.cancel(campaign)
    st = p.campaign_status(campaign)
    click.echo(f"cancelled {campaign}: {st.sent} already sent, {st.queued + st.deferred} "
               "queued messages will be dropped as workers reach them")


@main.command()
@click.option("--set", "set_", nargs=2, metavar="SENDER N", help="set a sender's daily limit")
@friendly
def limits(set_: tuple[str, str] | None) -> None:
    """Today's use per sender against its daily limit."""
    from .producer import Producer
    from .progress import table
    from .quota import DailyQuota

    s = _settings()
    p = Producer(s)
    q = DailyQuota(p.r, prefix=s.prefix, tz=s.tz, default_limit=s.limit_for)
    if set_:
        q.set_limit(set_[0], int(set_[1]))
    now = p.control.now()
    senders_ = sorted(set(p.r.smembers(p.keys.senders)) | set(s.daily_limits)
                      | set(p.r.hkeys(f"{s.prefix}:limits")))
    rows = [(name, used, limit or "none", "closed" if q.is_closed(name, now) else "")
            for name, (used, limit) in q.usage(senders_, now).items()]
    click.echo(table(rows, ("sender", "used today", "limit", "state")) if rows else "no senders")


@main.group(invoke_without_command=True)
@click.pass_context
@friendly
def held(ctx: click.Context) -> None:
    """Messages whose outcome is unknown (a timeout after sending): review them."""
    if ctx.invoked_subcommand is not None:
        return
    from .producer import Producer
    from .progress import table

    p = Producer(_settings())
    jobs = p.store.held()
    if not jobs:
        click.echo("no held messages")
        return
    click.echo(table([(j.id, j.sender, j.to, j.text[:40]) for j in jobs],
                     ("message", "sender", "to", "text")))
    click.echo("check them in the provider's portal, then: dreams-sms held delivered ID... "
               "or dreams-sms held resend ID... (--all for every one)")


def _settle(ids: tuple[str, ...], everything: bool, delivered: bool) -> None:
    from .producer import Producer

    p = Producer(_settings())
    if everything:
        ids = tuple(j.id for j in p.store.held(limit=10**9))
    if not ids:
        raise click.UsageError("name message ids, or --all")
    n = p.store.settle_held(ids, delivered=delivered, now=p.control.now())
    if not delivered:
        for sender in sorted(p.r.smembers(p.keys.senders)):
            p.kick(sender)
    click.echo(f"{n} message(s) {'marked sent' if delivered else 'queued again'}")


@held.command("delivered")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True)
@friendly
def held_delivered(ids: tuple[str, ...], everything: bool) -> None:
    """The provider did take them: mark them sent."""
    _settle(ids, everything, True)


@held.command("resend")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True)
@friendly
def held_resend(ids: tuple[str, ...], everything: bool) -> None:
    """The provider did not take them: queue them again."""
    _settle(ids, everything, False)


# -- processes -------------------------------------------------------------------------
@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def sandbox(ctx: click.Context) -> None:
    """Run the local Dreams sandbox (options: `dreams-sms sandbox --help`)."""
    from .sandbox.__main__ import main as sandbox_main

    sys.exit(sandbox_main(ctx.args))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--unauthenticated", is_flag=True, help="allow Flower without a password")
@click.option("--port", default=5555, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
@click.pass_context
@friendly
def flower(ctx: click.Context, unauthenticated: bool, port: int, address: str) -> None:
    """Flower with basic auth from DREAMS_FLOWER_AUTH (user:password)."""
    auth = os.environ.get("DREAMS_FLOWER_AUTH", "")
    if not auth and not unauthenticated:
        raise ConfigError("DREAMS_FLOWER_AUTH is not set (user:password); refusing to start "
                          "Flower unauthenticated without --unauthenticated")
    if auth and ":" not in auth:
        raise ConfigError("DREAMS_FLOWER_AUTH must be user:password")
    args = [sys.executable, "-m", "celery", "-A", "dreams_sms.worker", "flower",
            f"--port={port}", f"--address={address}", "--max_tasks=20000",
            "--tasks_columns=name,uuid,state,received,started,runtime,worker",
            "--purge_offline_workers=60", *ctx.args]
    env = dict(os.environ)
    if auth:
        # Passed through the environment, not argv, so `ps` does not show it.
        env["FLOWER_BASIC_AUTH"] = auth
    os.execve(sys.executable, args, env)  # noqa: S606 - replaces this process by design


@main.command()
@click.option("--size", default=20_000, show_default=True, help="messages in the campaign")
@click.option("--workers", default=2, show_default=True, help="worker processes")
@click.option("--concurrency", default=2, show_default=True, help="slots per worker")
@click.option("--keep", is_flag=True, help="keep the stack up after the summary")
@click.option("--no-flower", is_flag=True, help="do not start Flower")
@click.option("--fault-rate", default=0.05, show_default=True,
              help="share of sandbox calls answering -114/-118")
@click.option("--latency-ms", default=50.0, show_default=True,
              help="the sandbox's answer time per call")
@friendly
def demo(size: int, workers: int, concurrency: int, keep: bool, no_flower: bool,
         fault_rate: float, latency_ms: float) -> None:
    """Run everything privately and send a demo campaign to the sandbox."""
    from .demo import DemoOptions, run

    auth = os.environ.get("DREAMS_FLOWER_AUTH", "demo:demo")
    sys.exit(run(DemoOptions(size=size, workers=workers, concurrency=concurrency, keep=keep,
                             flower=not no_flower, flower_auth=auth, fault_rate=fault_rate,
                             latency_ms=latency_ms)))


@main.command()
@click.option("--port", default=9108, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
@friendly
def metrics(port: int, address: str) -> None:
    """Serve Prometheus metrics (messages, latency, depth, limits, balance)."""
    import logging

    from .metrics import serve

    logging.basicConfig(level=logging.INFO)
    click.echo(f"metrics on http://{address}:{port}/metrics")
    serve(_settings(), address, port)


@main.command("config")
def config_cmd() -> None:
    """The environment variables and their defaults."""
    from .progress import table

    click.echo(table(env_table(), ("variable", "setting", "default")))


if __name__ == "__main__":
    main()
