"""`dreams-sms demo`: the whole system on embedded defaults, start to summary.

A private Redis, the sandbox (with some -114/-118 faults), workers, beat,
Flower and the HTTP API; a campaign of mixed Arabic and Latin messages with a few invalid
numbers and a low daily limit on one sender; a live bar; a summary; and
everything stopped on exit or Ctrl-C. Addresses are printed only with
`--keep`, when the stack stays up to be looked at (then with the metrics
exporter, an API key for the HTTP API and a block of exports for another
shell): without them they would be dead a second after they are shown.
"""

from __future__ import annotations

import random
import shlex
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from dreams_sms.config import Settings
from dreams_sms.ops.progress import follow, table
from dreams_sms.ops.stack import Stack
from dreams_sms.producer import CampaignStatus, Producer
from dreams_sms.sandbox.testing import SandboxAdmin

SENDERS = ("Dreams", "Alerts", "Promo")
LIMITED = "Promo"
TEXTS = (
    "Your verification code is {n}",
    "رمز التحقق الخاص بك هو {n}",
    "Your order #{n} has shipped and will arrive tomorrow.",
    "تم شحن طلبك رقم {n} وسيصل غداً",
    "Flash sale! 20% off everything today only. Code SALE{n}",
    "عرض خاص: خصم ٢٠٪ على جميع المنتجات اليوم فقط. الكود {n}",
)
INVALID = ("12345", "0501234", "+14155550100", "05X1234567", "", "966412345678")


@dataclass
class DemoOptions:
    size: int = 20_000
    workers: int = 2
    concurrency: int = 2
    keep: bool = False
    flower: bool = True
    flower_auth: str = "demo:demo"
    fault_rate: float = 0.05
    latency_ms: float = 50.0  # a provider is not instant; makes the live bar worth watching
    limit: int = 0  # the limited sender's daily limit; 0: a fifth of its share
    timeout: float = 600.0


def rows(size: int, seed: int = 7) -> Iterator[tuple[str, str, str]]:
    """(sender, number, text) rows, a few with invalid numbers."""
    rnd = random.Random(seed)
    for i in range(size):
        sender = SENDERS[i % len(SENDERS)]
        if i % 2500 == 1234:
            number = INVALID[(i // 2500) % len(INVALID)]
        else:
            number = f"05{rnd.choice('0345689')}{rnd.randrange(10**7):07d}"
        yield sender, number, TEXTS[i % len(TEXTS)].format(n=100000 + i)


def run(opts: DemoOptions, out: TextIO = sys.stdout) -> int:
    share = opts.size // len(SENDERS)
    limit = opts.limit or max(share // 5, 1)
    env = {
        "DREAMS_DAILY_LIMITS": f"{LIMITED}={limit}",
        "DREAMS_BALANCE_INTERVAL": "5",
        "DREAMS_RETRY_DELAY": "2",
        "DREAMS_RETRY_MAX_WAIT": "1",
        "DREAMS_CLAIM_IDLE": "20",
        "DREAMS_READ_TIMEOUT": "10",
    }
    stack = Stack(workers=opts.workers, concurrency=opts.concurrency, flower=opts.flower,
                  flower_auth=opts.flower_auth, env=env, metrics=opts.keep, api=True,
                  sandbox_args=["--error-rate", str(opts.fault_rate), "--seed", "7",
                                "--latency-ms", str(opts.latency_ms)])

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Both explicitly: a shell may start us with SIGINT ignored (a background job).
    old = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    print("starting a private stack: redis, sandbox, "
          f"{opts.workers} worker(s) x {opts.concurrency}, beat"
          + (", flower" if opts.flower else "") + ", api" + (", metrics" if opts.keep else "")
          + " ...", file=out, flush=True)
    try:
        stack.start()
        settings = Settings.from_env(stack.env())
        producer = Producer(settings)
        key = _demo_key(producer)
        print(f"API:     {stack.api_url}  (/docs; live dashboard at /dashboard: any user, the "
              "demo key below as password; up until the demo ends)", file=out)
        print(f"  demo API key for {', '.join(SENDERS)} (this stack only): {key}", file=out)
        admin = SandboxAdmin(stack.sandbox_url)
        balance_before = admin.state()["accounts"]["demo"]["balance"]
        started = time.monotonic()
        campaigns = {}
        rejected = []
        for sender in SENDERS:
            mine = ((n, t) for s, n, t in rows(opts.size) if s == sender)
            res = producer.send_bulk(sender, mine, campaign=f"demo_{sender.lower()}")
            campaigns[sender] = res
            rejected += [(sender, i, why) for i, why in res.rejected]
        queued = sum(c.queued for c in campaigns.values())
        print(f"enqueued {queued} messages in {time.monotonic() - started:.1f}s; "
              f"{len(rejected)} rows refused:", file=out)
        for sender, i, why in rejected[:10]:
            print(f"  {sender} row {i}: {why}", file=out)
        print(f"{LIMITED} has a daily limit of {limit}: the rest waits for tomorrow",
              file=out, flush=True)

        def read() -> list[CampaignStatus]:
            return [producer.campaign_status(c) for c in campaigns.values()]

        def finished(_: dict[str, float]) -> bool:
            return all(s.queued == 0 and s.sending == 0 and (s.deferred == 0 or s.closed_today)
                       for s in read())

        final = follow(read, until=finished, timeout=opts.timeout, out=out, started=started)
        record = admin.stats()
        statuses = read()
        counts: list[tuple[int, ...]] = [
            (s.total, s.queued, s.sent, s.deferred, s.failed, s.expired, s.unknown,
             record["by_sender"].get(s.sender, 0)) for s in statuses]
        body: list[tuple[object, ...]] = [
            (s.sender, *c) for s, c in zip(statuses, counts, strict=True)]
        body.append(("all", *(sum(c[i] for c in counts) for i in range(8))))
        print(table(body, ("sender", "total", "queued", "sent", "deferred", "failed", "expired",
                           "unknown", "sandbox accepted")), file=out)
        print("  total: messages in the campaign; queued: still waiting to be sent", file=out)
        _explain_deferred(statuses, limit, out)
        sent = sum(s.sent for s in statuses)
        balance_after = admin.state()["accounts"]["demo"]["balance"]
        print(f"{sent} sent in {final['elapsed']:.1f}s ({final['rate']:.0f}/s on average); "
              f"{len(rejected)} invalid rows refused before queueing; "
              f"sandbox duplicates: {record['duplicates']}; "
              f"balance {balance_before:.0f} -> {balance_after:.0f} segments", file=out)
        answers = record.get("answers", {}).get("sendsms_multi", {})
        faults = describe_faults(answers)
        if faults:
            print(f"provider faults, retried until accepted: {faults}", file=out)
        ok = sent == record["accepted"] and record["duplicates"] == 0
        if opts.keep:
            _print_kept(stack, opts, key, out)
            while True:
                time.sleep(3600)
        return 0 if ok else 1
    except KeyboardInterrupt:
        print("\nstopping ...", file=out)
        return 130
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        stack.stop()
        print("all processes stopped", file=out, flush=True)


def _explain_deferred(statuses: Sequence[CampaignStatus], limit: int, out: TextIO) -> None:
    """Say why the bar stopped short: deferred messages wait for tomorrow."""
    for st in statuses:
        if st.deferred:
            of = f" of {limit}" if st.sender == LIMITED else ""
            print(f"  deferred: {st.deferred} {st.sender} messages wait for tomorrow: "
                  f"{st.sender}'s daily limit{of} is used up (so the bar stops short of "
                  "100%)", file=out)


#: How the sandbox names the faults it injects, for people.
FAULT_NAMES = {
    "hang": "no answer in time",
    "garbled": "unreadable answer",
    "drop_after_accept": "accepted, then the connection dropped",
}


def describe_faults(answers: Mapping[str, int]) -> str:
    """`{"-114": 31, "-118": 24}` -> `31 x -114 (service not available), 24 x -118 (...)`."""
    from dreams_sms.provider.codes import lookup

    parts = []
    for key, n in sorted(answers.items(), key=lambda kv: -kv[1]):
        if key in ("999", "ok", "accepted") or not n:
            continue
        if key.lstrip("-").isdigit():
            what = f"{key} ({lookup('sendsms_multi', int(key)).description})"
        elif key.startswith("http_"):
            what = f"HTTP {key[5:]}"
        else:
            what = FAULT_NAMES.get(key, key)
        parts.append(f"{n} x {what}")
    return ", ".join(parts)


def _demo_key(producer: Producer) -> str:
    """An API key for the demo's senders, on the demo's private Redis."""
    from dreams_sms.api.keys import ApiKeys

    return ApiKeys(producer.r, producer.settings.prefix).create(SENDERS, name="demo")[1]


def _print_kept(stack: Stack, opts: DemoOptions, key: str, out: TextIO) -> None:
    """Addresses of the kept stack, and exports to paste into another shell."""
    env = stack.env()
    names = ("REDIS_URL", "DREAMS_BASE_URL", "DREAMS_OAUTH_URL", "DREAMS_USER",
             "DREAMS_SECRET_KEY", "DREAMS_DAILY_LIMITS")
    exports = " ".join(f"{k}={shlex.quote(env[k])}" for k in names if env.get(k))
    print("stack is up; to use it from another shell, paste:", file=out)
    print(f"  export {exports}", file=out)
    print("  dreams-sms status; dreams-sms limits; dreams-sms balance", file=out)
    print(f"sandbox: {stack.sandbox_url}  (admin API: {stack.sandbox_url}/_sandbox/state)",
          file=out)
    print(f"metrics: {stack.metrics_url}  (queue depth: dreams_stream_depth)", file=out)
    print(f"API:     {stack.api_url}  (docs: {stack.api_url}/docs; dashboard: "
          f"{stack.api_url}/dashboard)", file=out)
    print(f"  curl -H 'Authorization: Bearer {key}' {stack.api_url}/v1/senders", file=out)
    if opts.flower:
        user = opts.flower_auth.partition(":")[0]
        shown = "demo" if opts.flower_auth == "demo:demo" else "from DREAMS_FLOWER_AUTH"
        print(f"Flower:  {stack.flower_url}  (user {user}, password {shown})", file=out)
    print("Ctrl-C stops everything", file=out, flush=True)
