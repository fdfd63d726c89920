"""`dreams-sms`: the provider's endpoints, the queue and the demo from a shell.

Every error is one line on stderr and a non-zero exit, never a traceback: the
group below turns our errors, Redis trouble, a busy port and click's usage
errors into that line. The exit status is 1 for refusals and trouble on the
way (provider, Redis, network) and 2 for bad input or configuration.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, cast, overload
from urllib.parse import urlsplit

import click
import redis

from dreams_sms.config import Settings, env_table
from dreams_sms.errors import (
    ConfigError,
    DreamsError,
    ProviderError,
    ValidationError,
)
from dreams_sms.provider.redact import redact, redact_url

if TYPE_CHECKING:  # imported where used, so `dreams-sms --help` stays quick
    from dreams_sms.provider.client import DreamsClient
    from dreams_sms.provider.oauth import OAuthClient

    _LimitParam = click.ParamType[int | str]
else:  # ParamType is generic from click 8.4 on; older releases in range are not
    _LimitParam = click.ParamType

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def _settings() -> Settings:
    return Settings.from_env()


class PortInUse(DreamsError):
    """A server command's port is taken; says how to pick another."""

    def __init__(self, port: int):
        super().__init__(f"port {port} is already in use; pick another with --port")
        self.port = port


def ensure_port_free(address: str, port: int) -> None:
    """Fail before starting a server (or exec'ing one) whose port is taken.

    Binds with SO_REUSEADDR, as the servers do, so a port in TIME_WAIT is free.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(port) from None
            raise


def _redis_url_for_messages() -> str:
    """The REDIS_URL in effect, for naming where Redis was looked for."""
    try:
        return _settings().redis_url
    except ConfigError:
        return Settings().redis_url


def redis_where(url: str) -> str:
    """`host:port` (or the socket path) of a Redis URL; never its password."""
    try:
        parts = urlsplit(url)
        if parts.scheme in ("redis", "rediss"):
            return f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"
        if parts.scheme == "unix":
            return parts.path
    except ValueError:
        pass
    return redact_url(url)


def redis_problem(exc: redis.RedisError, url: str) -> str:
    """One line saying what is wrong with Redis and what to do, without secrets."""
    text = str(exc)
    where = redis_where(url)
    if isinstance(exc, redis.AuthenticationError) or re.search(r"NOAUTH|WRONGPASS", text):
        try:
            parts = urlsplit(url)
            has_password = bool(parts.password)
            db = parts.path.strip("/") or "0"
        except ValueError:
            has_password, db = False, "0"
        if not has_password:
            return ("Redis needs a password: add it to REDIS_URL "
                    f"(redis://:PASSWORD@{where}/{db})")
        return f"Redis at {where} refused the password in REDIS_URL"
    if isinstance(exc, redis.TimeoutError):
        return f"Redis at {where} did not answer in time: is it overloaded or far away?"
    if isinstance(exc, redis.ConnectionError):
        m = re.search(r"connecting to \S+?\.\s+(.+?)\.?$", text)
        reason = (m[1] if m else redact(text)).rstrip(".").lower()
        return (f"cannot reach Redis at {where} ({reason}): is it running? "
                "REDIS_URL says where it is")
    return f"Redis at {where}: {redact(text)}"


def _fail(message: str, status: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


def _one_line(exc: BaseException) -> NoReturn:
    """Map an error that escaped a command to its line and exit status."""
    import kombu.exceptions

    if isinstance(exc, ProviderError):
        _fail(f"{exc.endpoint} answered {exc.code}: {exc.description}", EXIT_FAILED)
    if isinstance(exc, ConfigError | ValidationError):
        _fail(str(exc), EXIT_USAGE)
    if isinstance(exc, DreamsError):
        _fail(str(exc), EXIT_FAILED)
    if isinstance(exc, redis.RedisError):
        _fail(redis_problem(exc, _redis_url_for_messages()), EXIT_FAILED)
    if isinstance(exc, kombu.exceptions.OperationalError):
        cause = exc.__cause__ if isinstance(exc.__cause__, redis.RedisError) else None
        url = _redis_url_for_messages()
        _fail(redis_problem(cause, url) if cause else
              f"Celery cannot use Redis at {redis_where(url)}: {redact(str(exc))}", EXIT_FAILED)
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            _fail("address already in use; pick another with --port", EXIT_FAILED)
        where = f" ({exc.filename})" if exc.filename else ""
        _fail(f"{exc.strerror or exc}{where}", EXIT_FAILED)
    raise exc


class DreamsGroup(click.Group):
    """The top-level group: one place turns every error into one line."""

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        prog_name = "dreams-sms"  # also under `python -m` and click's test runner
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else self._command_path(args, prog_name)
            _fail(f"{exc.format_message()} (see: {where} --help)", EXIT_USAGE)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except (DreamsError, redis.RedisError, OSError) as exc:
            _one_line(exc)
        except Exception as exc:
            import kombu.exceptions

            if isinstance(exc, kombu.exceptions.OperationalError):
                _one_line(exc)
            raise
        sys.exit(rv if isinstance(rv, int) else 0)

    def _command_path(self, args: Any, prog_name: str) -> str:
        """`dreams-sms limits` from the words, for errors click raises without a context."""
        words = list(sys.argv[1:] if args is None else args)
        path = [prog_name]
        cmd: click.Command = self
        for word in words:
            if isinstance(cmd, click.Group) and word in cmd.commands:
                path.append(word)
                cmd = cmd.commands[word]
            elif not word.startswith("-"):
                break
        return " ".join(path)


def _client() -> DreamsClient:
    from dreams_sms.provider.client import DreamsClient

    s = _settings()
    s.require_credentials()
    return DreamsClient(s)


@click.group(cls=DreamsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dreams-sms")
def main() -> None:
    """Queue-backed bulk SMS for the Dreams SMS API."""


# -- provider endpoints ---------------------------------------------------------------
@main.command()
def balance() -> None:
    """The account's balance (chk_balance)."""
    value = _client().balance()
    click.echo(f"{value:.2f}".rstrip("0").rstrip("."))


@main.group()
def senders() -> None:
    """Sender names: list, add, status."""


@senders.command("list")
def senders_list() -> None:
    from dreams_sms.ops.progress import table

    rows = [(s.text, s.status, "yes" if s.default else "", s.date, s.notes)
            for s in _client().senders()]
    click.echo(table(rows, ("sender", "status", "default", "date", "notes")) if rows
               else "no senders")


@senders.command("add")
@click.argument("name")
def senders_add(name: str) -> None:
    """Request a new sender name (newsender)."""
    _client().new_sender(name)
    click.echo(f"requested sender {name}; it is active once the provider approves it")


@senders.command("status")
@click.argument("name")
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
def account_register(user: str, password: str, name: str, mobile: str, email: str) -> None:
    from dreams_sms.provider.client import DreamsClient

    DreamsClient(_settings()).register(user, password, name, mobile, email)
    click.echo(f"registered {user}; activate it with the code the provider sends")


@account.command("activate")
@click.argument("code")
def account_activate(code: str) -> None:
    _client().activate(code)
    click.echo("account activated")


@account.command("check")
def account_check() -> None:
    _client().check_user()
    click.echo("account is valid")


@main.group()
def token() -> None:
    """OAuth tokens: generate, refresh, revoke (values go to stdout only)."""


def _oauth() -> OAuthClient:
    from dreams_sms.provider.oauth import OAuthClient

    s = _settings()
    s.require_oauth()
    return OAuthClient(s)


@token.command("generate")
def token_generate() -> None:
    click.echo(json.dumps(_oauth().generate().as_dict()))


@token.command("refresh")
@click.option("--refresh-token", help="or DREAMS_REFRESH_TOKEN (better: not in `ps`)")
def token_refresh(refresh_token: str | None) -> None:
    value = refresh_token or _settings().refresh_token.reveal()
    if not value:
        raise click.UsageError("give --refresh-token or set DREAMS_REFRESH_TOKEN")
    click.echo(json.dumps(_oauth().refresh(value).as_dict()))


@token.command("revoke")
@click.option("--token", "value", help="or DREAMS_TOKEN (better: not in `ps`)")
def token_revoke(value: str | None) -> None:
    value = value or _settings().token.reveal()
    if not value:
        raise click.UsageError("give --token or set DREAMS_TOKEN")
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
def send(to: str, text: str, sender: str, queue: bool, priority: str, **options: Any) -> None:
    """Send one message now (sendsms), or --queue it."""
    from dreams_sms.provider.validate import (
        check_options,
        check_sender,
        check_text,
        normalize_number,
    )

    opts = check_options({k: v for k, v in options.items() if v is not None})
    if queue:
        from dreams_sms.producer import Producer

        # opts holds sendsms option names only (check_options), none of send()'s keywords.
        mid = Producer(_settings()).send(to, text, sender, priority=priority,
                                         **opts)  # type: ignore[arg-type]
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
def bulk(**options: Any) -> None:
    """Check a CSV/JSONL file, show its cost, queue its valid rows, follow the campaign."""
    from dreams_sms.ops.bulkcmd import BulkOptions, run

    sys.exit(run(BulkOptions(**options), _settings()))


@main.command()
@click.argument("campaign", required=False)
def status(campaign: str | None) -> None:
    """A campaign's counts, or the state of the whole queue."""
    from dreams_sms.ops.progress import table
    from dreams_sms.producer import Producer

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
                           s.failed, s.expired, s.unknown, s.cancelled)],
                         ("campaign", "sender", "total", "queued", "sending", "sent", "deferred",
                          "failed", "expired", "unknown", "cancelled")))
        for code, n in sorted(s.failures.items()):
            from dreams_sms.provider.codes import lookup

            click.echo(f"  failed {code} ({lookup('sendsms_multi', code).description}): {n}")
        return
    pauses = p.control.pauses()
    click.echo("; ".join(_pause_line(i) for i in pauses.values()) if pauses
               else "sending: running")
    rows = []
    for sender in sorted(_members(p.r, p.keys.senders)):
        hi, lo = (p.r.xlen(k) for k in p.keys.streams(sender))
        sp = p.control.paused(sender)
        rows.append((sender, hi, lo, "paused" if sp else ""))
    click.echo(table(rows, ("sender", "high", "normal", "state")) if rows else "no senders yet")


def _members(r: redis.Redis, key: str) -> set[str]:
    # The producer's client decodes replies (decode_responses=True): str members.
    return cast("set[str]", r.smembers(key))


def _hkeys(r: redis.Redis, key: str) -> list[str]:
    return cast("list[str]", r.hkeys(key))  # decoded, as above


def _pause_line(paused: dict[str, object]) -> str:
    """`paused: balance (code -113)`, or `paused: operator` when there is no code."""
    code = paused.get("code")
    return f"paused: {paused.get('reason', 'unknown')}" + (f" (code {code})" if code else "")


@overload
def _sender_option(value: str) -> str: ...


@overload
def _sender_option(value: None) -> None: ...


@overload
def _sender_option(value: str | None) -> str | None: ...


def _sender_option(value: str | None) -> str | None:
    """`--sender` checked like a sender name: an empty one would pause nobody."""
    if value is None:
        return None
    from dreams_sms.provider.validate import check_sender

    return check_sender(value)


@main.command()
@click.option("--sender", help="only this sender")
def pause(sender: str | None) -> None:
    """Pause sending (all, or one sender). Jobs stay queued."""
    from dreams_sms.producer import Producer

    sender = _sender_option(sender)
    Producer(_settings()).pause(sender)
    click.echo(f"paused {sender or 'all senders'}")


@main.command()
@click.option("--sender", help="only this sender")
def resume(sender: str | None) -> None:
    """Lift a pause (all, or one sender); a sender never seen is refused (a typo)."""
    from dreams_sms.producer import Producer

    sender = _sender_option(sender)
    p = Producer(_settings())
    if sender is not None:
        known = p.r.sismember(p.keys.senders, sender)
        own_pause = p.control.paused(sender) is not None and p.control.paused() is None
        if not (known or own_pause):
            raise ValidationError(f"unknown sender {sender!r}: it has queued nothing and is "
                                  "not paused (see dreams-sms status)", field="sender")
    p.resume(sender)
    click.echo(f"resumed {sender or 'all senders'}")


@main.command()
@click.argument("campaign")
def cancel(campaign: str) -> None:
    """Cancel a campaign: what is still queued is dropped, never sent."""
    from dreams_sms.producer import Producer

    p = Producer(_settings())
    p.cancel(campaign)
    st = p.campaign_status(campaign)
    click.echo(f"cancelled {campaign}: {st.sent} already sent, {st.queued + st.deferred} "
               "queued messages will be dropped as workers reach them")


class _LimitType(_LimitParam):
    """A daily limit on the command line: a whole number >= 0, or `none`."""

    name = "N|none"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> int | str:
        text = str(value).strip().lower()
        if text == "none":
            return text
        if text.isdigit():
            return int(text)
        self.fail(f"{value!r} is not a daily limit: give a whole number >= 0 "
                  "(0 stops the sender) or 'none'", param, ctx)


@main.command()
@click.option("--set", "set_", type=(str, _LimitType()), metavar="SENDER N|none",
              help="set a sender's daily limit for every worker (0 stops it; none: no limit)")
@click.option("--clear", metavar="SENDER", help="back to the configured limit")
def limits(set_: tuple[str, int | str] | None, clear: str | None) -> None:
    """The daily limits every worker enforces, and today's use against them."""
    from dreams_sms.ops.progress import table
    from dreams_sms.producer import Producer
    from dreams_sms.queue.quota import DailyQuota

    s = _settings()
    p = Producer(s)
    q = DailyQuota(p.r, prefix=s.prefix, tz=s.tz)
    known = _members(p.r, p.keys.senders) | set(_hkeys(p.r, p.keys.limits))
    if set_:
        sender = _sender_option(set_[0])
        assert sender is not None
        q.set_limit(sender, set_[1])
        known.add(sender)
    if clear is not None:
        sender = _sender_option(clear)
        if not p.r.hexists(p.keys.limits, sender):
            raise ValidationError(f"no operator limit to clear for {sender!r}", field="sender")
        q.set_limit(sender, None)
    now = p.control.now()
    senders_ = sorted(known | {k for k in _hkeys(p.r, p.keys.limits_seed) if k != "*"})
    overrides = set(_hkeys(p.r, p.keys.limits))
    rows = [(name, used, "none" if limit is None else limit,
             "operator" if name in overrides else "configured",
             "closed" if q.is_closed(name, now) else "")
            for name, (used, limit) in q.usage(senders_, now).items()]
    click.echo(table(rows, ("sender", "used today", "limit", "set by", "state"))
               if rows else "no senders")


@main.group(invoke_without_command=True)
@click.pass_context
def held(ctx: click.Context) -> None:
    """Messages whose outcome is unknown (a timeout after sending): review them."""
    if ctx.invoked_subcommand is not None:
        return
    from dreams_sms.ops.progress import table
    from dreams_sms.producer import Producer

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
    from dreams_sms.producer import Producer

    p = Producer(_settings())
    if everything:
        ids = tuple(j.id for j in p.store.held(limit=10**9))
    if not ids:
        raise click.UsageError("name message ids, or --all")
    if not everything:
        held_ids = {j.id for j in p.store.held(limit=10**9)}
        unknown = [i for i in ids if i not in held_ids]
        if unknown:
            shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more"
                                              if len(unknown) > 5 else "")
            raise ValidationError(f"not held: {shown} (see dreams-sms held); nothing changed",
                                  field="ids")
    n = p.store.settle_held(ids, delivered=delivered, now=p.control.now())
    if not delivered:
        for sender in sorted(_members(p.r, p.keys.senders)):
            p.kick(sender)
    click.echo(f"{n} message(s) {'marked sent' if delivered else 'queued again'}")


@held.command("delivered")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True)
def held_delivered(ids: tuple[str, ...], everything: bool) -> None:
    """The provider did take them: mark them sent."""
    _settle(ids, everything, True)


@held.command("resend")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True)
def held_resend(ids: tuple[str, ...], everything: bool) -> None:
    """The provider did not take them: queue them again."""
    _settle(ids, everything, False)


# -- processes -------------------------------------------------------------------------
@main.command(add_help_option=False,
              context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def sandbox(ctx: click.Context) -> None:
    """Run the local Dreams sandbox (its options: dreams-sms sandbox --help)."""
    from dreams_sms.sandbox.__main__ import main as sandbox_main

    sys.exit(sandbox_main(ctx.args, prog="dreams-sms sandbox"))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--unauthenticated", is_flag=True, help="allow Flower without a password")
@click.option("--port", default=5555, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
@click.pass_context
def flower(ctx: click.Context, unauthenticated: bool, port: int, address: str) -> None:
    """Flower with basic auth from DREAMS_FLOWER_AUTH (user:password)."""
    auth = _settings().flower_auth.reveal()
    if not auth and not unauthenticated:
        raise ConfigError("DREAMS_FLOWER_AUTH is not set (user:password); refusing to start "
                          "Flower unauthenticated without --unauthenticated")
    if auth and ":" not in auth:
        raise ConfigError("DREAMS_FLOWER_AUTH must be user:password")
    ensure_port_free(address, port)  # Flower would only say so after exec, in a traceback
    args = [sys.executable, "-m", "celery", "-A", "dreams_sms.worker", "flower",
            f"--port={port}", f"--address={address}", "--max_tasks=20000",
            # the drain result (what it sent) reads as an activity log; args is the sender
            "--tasks_columns=name,args,result,state,received,runtime,worker",
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
def demo(size: int, workers: int, concurrency: int, keep: bool, no_flower: bool,
         fault_rate: float, latency_ms: float) -> None:
    """Run everything privately and send a demo campaign to the sandbox."""
    from dreams_sms.ops.demo import DemoOptions, run

    auth = _settings().flower_auth.reveal() or "demo:demo"
    sys.exit(run(DemoOptions(size=size, workers=workers, concurrency=concurrency, keep=keep,
                             flower=not no_flower, flower_auth=auth, fault_rate=fault_rate,
                             latency_ms=latency_ms)))


@main.command()
@click.option("--port", default=9108, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
def metrics(port: int, address: str) -> None:
    """Serve Prometheus metrics (messages, latency, depth, limits, balance)."""
    import logging

    from dreams_sms.ops.metrics import serve

    logging.basicConfig(level=logging.INFO)
    settings = _settings()
    ensure_port_free(address, port)
    click.echo(f"metrics on http://{address}:{port}/metrics")
    serve(settings, address, port)


# -- the HTTP API ----------------------------------------------------------------------
@main.command()
@click.option("--address", help="default: DREAMS_API_HOST (127.0.0.1)")
@click.option("--port", type=click.IntRange(1, 65535), help="default: DREAMS_API_PORT (8080)")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="uvicorn worker processes (or run more replicas behind a proxy)")
def serve(address: str | None, port: int | None, workers: int) -> None:
    """Serve the HTTP API (enqueue and status over HTTP; keys: dreams-sms keys)."""
    import uvicorn

    from dreams_sms.api.app import create_app

    settings = _settings()
    address = address or settings.api_host
    port = port or settings.api_port
    app = create_app(settings)  # Redis is checked here, before the port is taken
    ensure_port_free(address, port)
    click.echo(f"API on http://{address}:{port}  (OpenAPI: /openapi.json, docs: /docs)")
    common: dict[str, Any] = {"host": address, "port": port, "server_header": False,
                              "proxy_headers": True, "log_level": "info"}
    if workers > 1:
        uvicorn.run("dreams_sms.api.app:app_from_env", factory=True, workers=workers, **common)
    else:
        uvicorn.run(app, **common)


@main.command()
@click.option("--output", type=click.Path(dir_okay=False, writable=True),
              help="write to this file (default: stdout)")
def openapi(output: str | None) -> None:
    """Print the API's OpenAPI document (docs/openapi.json is this, committed)."""
    from dreams_sms.api.app import openapi_text

    text = openapi_text()
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)


def _api_keys() -> Any:
    from dreams_sms.api.keys import ApiKeys
    from dreams_sms.queue.connect import connect

    s = _settings()
    # connect(): a sentinel:// URL too; no retry, a write must not be silently repeated
    return ApiKeys(connect(s, retry=False), s.prefix)


@main.group()
def keys() -> None:
    """HTTP API keys: create (the secret is shown once), list, revoke."""


@keys.command("create")
@click.option("--sender", "senders", multiple=True, required=True,
              help="a sender the key may use (repeat for more)")
@click.option("--name", default="", help="who or what the key is for")
def keys_create(senders: tuple[str, ...], name: str) -> None:
    """Create a key; its secret goes to stdout, once (Redis keeps only a hash)."""
    key, secret = _api_keys().create(senders, name)
    click.echo(f"created key {key.id}{f' ({key.name})' if key.name else ''} for "
               f"{', '.join(key.senders)}; the secret below is shown once, keep it:", err=True)
    click.echo(secret)


@keys.command("list")
def keys_list() -> None:
    """Every key: id, name, senders, created (never a secret)."""
    import datetime as dt

    from dreams_sms.ops.progress import table

    rows = [(k.id, k.name, ",".join(k.senders),
             dt.datetime.fromtimestamp(k.created, _settings().tz).isoformat(timespec="seconds"))
            for k in _api_keys().list()]
    click.echo(table(rows, ("id", "name", "senders", "created")) if rows else "no API keys")


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key at once, for every API replica."""
    if not _api_keys().revoke(key_id):
        raise ValidationError(f"no API key {key_id[:20]!r} (see dreams-sms keys list)",
                              field="key_id")
    click.echo(f"revoked key {key_id}")


@main.command("config")
def config_cmd() -> None:
    """Every setting: its variable, the value in effect (secrets masked), default, meaning."""
    from dreams_sms.ops.progress import table

    rows = env_table()
    click.echo(table(rows, ("variable", "value", "default", "meaning"), left=4))
    bad = [row[0] for row in rows if row[1].startswith("INVALID")]
    if bad:
        _fail(f"invalid: {', '.join(bad)} (a process would refuse to start)", EXIT_USAGE)


if __name__ == "__main__":
    main()
