"""The `dreams-sms` commands through click's runner, against a real sandbox over
HTTP and the private Redis: what an operator sees, exit statuses, no tracebacks."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from dreams_sms.config import Settings
from dreams_sms.ops import bulkcmd
from dreams_sms.ops.cli import main
from dreams_sms.producer import Producer
from dreams_sms.queue.keys import Keys
from dreams_sms.sandbox.server import SandboxServer
from dreams_sms.sandbox.testing import SandboxAdmin


@pytest.fixture
def env(
    sandbox: SandboxServer, sandbox_admin: SandboxAdmin, redis_url: str
) -> dict[str, str | None]:
    """The demo account on the sandbox; every other DREAMS_* of the real environment unset."""
    out: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith("DREAMS_") or k == "REDIS_URL"
    }
    out.update(
        DREAMS_BASE_URL=sandbox.api_url,
        DREAMS_USER="demo",
        DREAMS_SECRET_KEY="demo-secret",
        REDIS_URL=redis_url,
    )
    return out


@pytest.fixture
def oauth_env(env: dict[str, str | None], sandbox: SandboxServer) -> dict[str, str | None]:
    return {
        **env,
        "DREAMS_CLIENT_ID": "demo-client",
        "DREAMS_CLIENT_SECRET": "demo-client-secret",
        "DREAMS_OAUTH_URL": sandbox.oauth_url,
    }


def run(env: dict[str, str | None], *args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), env=env, input=input)
    assert "Traceback" not in result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def one_line(result: Result, status: int | None = None) -> str:
    """The error line: exactly one line on stderr, no traceback, non-zero exit."""
    assert result.exit_code != 0, result.output
    if status is not None:
        assert result.exit_code == status, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


def ok(env: dict[str, str | None], *args: str, input: str | None = None) -> str:
    result = run(env, *args, input=input)
    assert result.exit_code == 0, result.output
    return result.stdout


#: The keys the commands write: `env` leaves DREAMS_PREFIX unset, so the default prefix.
KEYS = Keys(Settings().prefix)


def queues(r) -> list[str]:
    """Every sender stream, of either priority."""
    return r.keys(KEYS.stream("*")) + r.keys(KEYS.stream("*", high=True))


# ---------------------------------------------------------------- provider endpoints


def test_balance(env):
    assert float(ok(env, "balance")) == 1_000_000


def test_senders_list_add_status(env):
    listed = ok(env, "senders", "list")
    for name in ("Dreams", "Alerts", "Promo"):
        assert name in listed
    assert ok(env, "senders", "status", "Dreams").strip() == "Dreams: Active"
    assert "NewOne" in ok(env, "senders", "add", "NewOne")
    assert "NewOne" in ok(env, "senders", "list")
    pending = run(env, "senders", "status", "NewOne")
    assert pending.exit_code == 1
    assert "senderstatus answered -117" in pending.stderr


def test_account_register_activate_check(env, sandbox_admin):
    result = run(env, "account", "register", "--user", "newbie", "--password", "s3cret-pw",
                 "--name", "New Bie", "--mobile", "0551112233", "--email", "nb@example.com")
    assert result.exit_code == 0, result.output
    assert "registered newbie" in result.stdout
    acct = sandbox_admin.account("newbie")
    mine = {**env, "DREAMS_USER": "newbie", "DREAMS_SECRET_KEY": acct["secret_key"]}

    before = run(mine, "account", "check")
    assert (before.exit_code, "chk_user answered -111" in before.stderr) == (1, True)
    wrong = run(mine, "account", "activate", "999999" if acct["activation_code"] != "999999"
                else "111111")
    assert wrong.exit_code == 1 and "activate answered -111" in wrong.stderr
    assert "account activated" in ok(mine, "account", "activate", acct["activation_code"])
    assert "account is valid" in ok(mine, "account", "check")


def test_account_register_taken_user(env):
    result = run(env, "account", "register", "--user", "demo", "--password", "s3cret-pw",
                 "--name", "D", "--mobile", "0551119999", "--email", "d2@example.com")
    assert result.exit_code == 1
    assert "Register answered -110" in result.stderr


def test_token_generate_refresh_revoke(oauth_env):
    first = json.loads(ok(oauth_env, "token", "generate"))
    assert first["access_token"] and first["refresh_token"]
    second = json.loads(ok(oauth_env, "token", "refresh", "--refresh-token",
                           first["refresh_token"]))
    assert second["access_token"] != first["access_token"]
    assert "token revoked" in ok(oauth_env, "token", "revoke", "--token",
                                 second["access_token"])


def test_token_wrong_client_secret(oauth_env):
    result = run({**oauth_env, "DREAMS_CLIENT_SECRET": "nope"}, "token", "generate")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")


def test_token_without_client_id(env):
    result = run(env, "token", "generate")
    assert result.exit_code == 2
    assert "DREAMS_CLIENT_ID" in result.stderr


def test_send_one_message(env, sandbox_admin):
    assert ok(env, "send", "0551234567", "hello from the cli", "--sender", "Dreams").startswith(
        "sent")
    msgs = sandbox_admin.messages()
    assert [(m["sender"], m["to"], m["text"]) for m in msgs] == [
        ("Dreams", "966551234567", "hello from the cli")]


def test_send_queue(env, r):
    out = ok(env, "send", "0551234567", "later", "--sender", "Dreams", "--queue")
    mid = out.split()[-1]
    assert out.startswith("queued ")
    assert "queued" in ok(env, "status", mid)


# ------------------------------------------------------------------------ errors


def test_unknown_sender_names_the_code(env, sandbox_admin):
    result = run(env, "send", "0551234567", "hi", "--sender", "Nope")
    assert result.exit_code == 1
    assert "-116" in result.stderr and "sendsms" in result.stderr
    assert sandbox_admin.messages() == []


def test_wrong_secret_names_the_code(env):
    result = run({**env, "DREAMS_SECRET_KEY": "wrong"}, "balance")
    assert result.exit_code == 1
    assert "chk_balance answered -110" in result.stderr


def test_missing_user_is_a_config_error(env):
    result = run({**env, "DREAMS_USER": None}, "balance")
    assert result.exit_code == 2
    assert "DREAMS_USER" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_number_is_refused_before_sending(env, sandbox_admin):
    result = run(env, "send", "12345", "hi", "--sender", "Dreams")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert sandbox_admin.messages() == []


def test_invalid_setting_names_the_variable(env):
    result = run({**env, "DREAMS_BATCH_SIZE": "0"}, "balance")
    assert result.exit_code == 2
    assert "DREAMS_BATCH_SIZE" in result.output


def test_config_lists_every_setting_with_value_default_and_meaning(env):
    from dreams_sms.config import ENV

    mine = {**env, "DREAMS_BATCH_SIZE": "250", "DREAMS_DAILY_LIMITS": "Promo=5",
            "REDIS_URL": "redis://:hunter22@127.0.0.1:6390/0", "DREAMS_FLOWER_AUTH": "ops:flowerpw"}
    out = ok(mine, "config")
    lines = out.splitlines()
    assert [c.strip() for c in lines[1].strip("|").split("|")] == [
        "variable", "value", "default", "meaning"]
    rows = {}
    for line in lines[3:-1]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    for var in [*ENV, "DREAMS_SECRET_KEY[_FILE]", "DREAMS_CLIENT_SECRET[_FILE]",
                "DREAMS_FLOWER_AUTH"]:
        assert var in rows, var
        assert rows[var][2], f"{var} has no meaning"
    assert "MISSING" not in out and "dataclasses" not in out
    assert rows["DREAMS_BATCH_SIZE"][:2] == ["250", "100"]
    assert rows["DREAMS_DAILY_LIMITS"][:2] == ["Promo=5", ""]
    assert rows["DREAMS_READ_TIMEOUT"][:2] == ["30", "30"]
    assert rows["DREAMS_TEST_CLOCK"][1] == "false"
    assert rows["REDIS_URL"][0] == "redis://:***@127.0.0.1:6390/0"
    assert rows["DREAMS_SECRET_KEY[_FILE]"][0].startswith("***")
    assert rows["DREAMS_FLOWER_AUTH"][0] == "ops:***"
    for secret in ("demo-secret", "hunter22", "flowerpw"):
        assert secret not in out


def test_config_marks_an_invalid_value_and_exits_non_zero(env):
    result = run({**env, "DREAMS_BATCH_SIZE": "0"}, "config")
    assert result.exit_code == 2
    row = next(ln for ln in result.stdout.splitlines() if "DREAMS_BATCH_SIZE" in ln)
    assert "INVALID (must be between 1 and 1000)" in row
    assert "DREAMS_BATCH_SIZE" in one_line(result)


# -------------------------------------------------------------------------- queue


def test_pause_resume_status(env, r):
    assert "sending: running" in ok(env, "status")
    assert "no senders yet" in ok(env, "status")
    assert ok(env, "pause").strip() == "paused all senders"
    assert ok(env, "status").splitlines()[0] == "paused: operator"
    assert ok(env, "resume").strip() == "resumed all senders"
    assert "sending: running" in ok(env, "status")


def test_pause_one_sender(env, r):
    ok(env, "send", "0551234567", "x", "--sender", "Alerts", "--queue")
    assert "paused Alerts" in ok(env, "pause", "--sender", "Alerts")
    row = next(ln for ln in ok(env, "status").splitlines() if "Alerts" in ln)
    assert "paused" in row
    ok(env, "resume", "--sender", "Alerts")
    row = next(ln for ln in ok(env, "status").splitlines() if "Alerts" in ln)
    assert "paused" not in row


def test_status_of_unknown_campaign(env, r):
    result = run(env, "status", "nosuch")
    assert result.exit_code == 2
    assert "unknown campaign" in result.stderr


def test_limits(env, r):
    assert "no senders" in ok(env, "limits")
    ok(env, "send", "0551234567", "x", "--sender", "Promo", "--queue")
    out = ok(env, "limits", "--set", "Promo", "300")
    row = next(ln for ln in out.splitlines() if "Promo" in ln)
    assert row.replace(" ", "").startswith("|Promo|0|300|")
    from dreams_sms.queue.quota import DailyQuota

    DailyQuota(r, prefix="dreams", tz=Settings().tz).seed(0, {"Alerts": 50})  # as a worker does
    for caller in (env, {**env, "DREAMS_DAILY_LIMITS": "Alerts=7"}):  # the caller's env is moot
        row = next(ln for ln in ok(caller, "limits").splitlines() if "Alerts" in ln)
        assert row.replace(" ", "").startswith("|Alerts|0|50|configured|")
    out = ok(env, "limits", "--set", "Promo", "0")
    row = next(ln for ln in out.splitlines() if "Promo" in ln)
    assert row.replace(" ", "") == "|Promo|0|0|operator|closed|"
    out = ok(env, "limits", "--set", "Promo", "none")
    assert next(ln for ln in out.splitlines() if "Promo" in ln).replace(" ", "").startswith(
        "|Promo|0|none|operator|")
    out = ok(env, "limits", "--clear", "Promo")
    assert "operator" not in next(ln for ln in out.splitlines() if "Promo" in ln)


# --------------------------------------------------------------------------- bulk

GOOD = [("0551000001", "first"), ("+966551000002", "second, with a comma"),
        ("966551000003", "مرحبا"), ("551000004", "fourth")]


def csv_file(tmp_path, lines: list[bytes], name: str = "c.csv"):
    path = tmp_path / name
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return str(path)


@pytest.fixture
def mixed(tmp_path) -> str:
    """A header, four good rows and three bad ones on lines 3, 5 and 7."""
    return csv_file(tmp_path, [
        b"number,text",
        b"0551000001,first",
        b"12345,too short",
        b'+966551000002,"second, with a comma"',
        b"0551000009,",
        "966551000003,مرحبا".encode(),
        b"0551000010,caf\xe9",
        b"551000004,fourth",
    ])


def campaign_of(out: str) -> str:
    line = next(ln for ln in out.splitlines() if ln.startswith("campaign ") and "queued" in ln)
    return line.split()[1].rstrip(":")


def producer(env) -> Producer:
    return Producer(Settings.from_env({k: v for k, v in env.items() if v is not None}))


def test_bulk_detach_queues_the_valid_rows(env, r, mixed):
    result = run(env, "bulk", mixed, "--sender", "Dreams", "--yes", "--detach")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "checked c.csv: 7 rows, 4 valid, 3 bad" in out
    for line in (3, 5, 7):
        assert f"  line {line}: " in out
    assert "line 7: text: not valid UTF-8 | 0551000010,caf\\xe9" in out
    assert "cost: 4 segments for 4 messages" in out
    assert "balance: 1,000,000 (enough; 999,996 left after)" in out
    assert "sender Dreams: Active" in out
    assert "dreams-sms status" in out
    cid = campaign_of(out)
    st = producer(env).campaign_status(cid)
    assert (st.total, st.queued, st.sender) == (4, 4, "Dreams")
    assert f"{cid}" in ok(env, "status", cid)


def test_bulk_campaign_id_and_priority(env, r, mixed):
    out = ok(env, "bulk", mixed, "--sender", "Alerts", "--yes", "--detach",
             "--campaign", "spring_1", "--priority", "high")
    assert campaign_of(out) == "spring_1"
    p = producer(env)
    assert r.xlen(p.keys.stream("Alerts", True)) == 4
    again = run(env, "bulk", mixed, "--sender", "Alerts", "--yes", "--detach",
                "--campaign", "spring_1")
    assert again.exit_code == 2
    assert "already exists" in again.stderr
    assert p.campaign_status("spring_1").total == 4


def test_bulk_without_tty_or_yes_refuses(env, r, mixed):
    result = run(env, "bulk", mixed, "--sender", "Dreams")
    assert result.exit_code == 2
    assert "--yes" in result.stderr
    assert r.keys(KEYS.campaign("*")) == [] and queues(r) == []


def test_bulk_confirmation(env, r, mixed, monkeypatch):
    monkeypatch.setattr(bulkcmd, "_stdin_is_tty", lambda: True)
    no = run(env, "bulk", mixed, "--sender", "Dreams", "--detach", input="n\n")
    assert no.exit_code == 1
    assert "Queue 4 messages (4 segments) from Dreams" in no.stdout
    assert "nothing queued" in no.stdout
    yes = run(env, "bulk", mixed, "--sender", "Dreams", "--detach", input="y\n")
    assert yes.exit_code == 0, yes.output
    assert producer(env).campaign_status(campaign_of(yes.stdout)).total == 4


def test_bulk_no_valid_row(env, r, tmp_path):
    path = csv_file(tmp_path, [b"number,text", b"123,x", b"0551000001,"])
    result = run(env, "bulk", path, "--sender", "Dreams", "--yes")
    assert result.exit_code == 1
    assert "line 2: " in result.stdout and "line 3: " in result.stdout
    assert "no valid row" in result.stderr


def test_bulk_max_bad(env, r, mixed):
    result = run(env, "bulk", mixed, "--sender", "Dreams", "--yes", "--max-bad", "2")
    assert result.exit_code == 1
    assert "more than --max-bad 2" in result.stderr
    assert "line 7: " in result.stdout
    assert ok(env, "bulk", mixed, "--sender", "Dreams", "--yes", "--detach", "--max-bad", "3")


def test_bulk_lists_50_bad_rows_then_counts(env, r, tmp_path):
    path = csv_file(tmp_path, [b"number,text", b"0551000001,ok"]
                    + [b"1%d,bad" % i for i in range(70)])
    out = ok(env, "bulk", path, "--sender", "Dreams", "--yes", "--detach")
    assert "line 52: " in out and "line 53: " not in out
    assert "... and 20 more bad rows" in out


def test_bulk_balance_failure_goes_on(env, r, mixed):
    result = run({**env, "DREAMS_SECRET_KEY": "wrong"}, "bulk", mixed, "--sender", "Dreams",
                 "--yes", "--detach")
    assert result.exit_code == 0, result.output
    assert "balance: could not check (chk_balance answered -110" in result.stdout
    assert producer(env).campaign_status(campaign_of(result.stdout)).total == 4


def test_bulk_low_balance_warns(env, r, sandbox_admin, mixed):
    sandbox_admin.set_balance(3)
    out = ok(env, "bulk", mixed, "--sender", "Dreams", "--yes", "--detach")
    assert "balance: 3, NOT enough: 1 short" in out


def test_bulk_refuses_a_sender_the_provider_does_not_know(env, r, mixed):
    result = run(env, "bulk", mixed, "--sender", "Nope", "--yes")
    assert result.exit_code == 1
    assert "sender Nope: not usable (senderstatus answered -116" in result.stdout
    assert one_line(result).startswith("error: sender Nope is not an active sender")
    assert "nothing queued" in result.stderr
    assert r.keys(KEYS.campaign("*")) == [] and queues(r) == []


def test_bulk_refuses_a_sender_not_yet_approved(env, r, mixed):
    ok(env, "senders", "add", "Pending")
    result = run(env, "bulk", mixed, "--sender", "Pending", "--yes")
    assert result.exit_code == 1
    assert "Pending" in one_line(result) and "nothing queued" in result.stderr
    assert queues(r) == []


def test_bulk_jsonl_and_format_option(env, r, tmp_path):
    rows = [json.dumps({"to": "0551000001", "text": "a"}), "not json",
            json.dumps({"number": "0551000002", "message": "b"}), "[1, 2]"]
    path = tmp_path / "rows.txt"
    path.write_text("\n".join(rows) + "\n")
    unknown = run(env, "bulk", str(path), "--sender", "Dreams", "--yes")
    assert unknown.exit_code == 2 and "format" in unknown.stderr
    out = ok(env, "bulk", str(path), "--sender", "Dreams", "--yes", "--detach",
             "--format", "jsonl")
    assert "4 rows, 2 valid, 2 bad" in out
    assert "line 2: not valid JSON" in out and "line 4: expected a JSON object" in out


def test_bulk_bad_header_and_bad_input(env, r, tmp_path):
    path = csv_file(tmp_path, [b"0551000001,hello"])
    result = run(env, "bulk", path, "--sender", "Dreams", "--yes")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "header" in result.stderr
    bad_sender = run(env, "bulk", path, "--sender", "", "--yes")
    assert bad_sender.exit_code == 2
    missing = run(env, "bulk", str(tmp_path / "nope.csv"), "--sender", "Dreams")
    assert missing.exit_code == 2
    bad_campaign = run(env, "bulk", path, "--sender", "Dreams", "--campaign", "a-b c")
    assert bad_campaign.exit_code == 2 and "campaign" in bad_campaign.stderr


def test_bulk_redis_down_is_one_line(env, tmp_path, mixed):
    result = run({**env, "REDIS_URL": "redis://127.0.0.1:1/0"}, "bulk", mixed,
                 "--sender", "Dreams", "--yes")
    assert result.exit_code == 1
    assert one_line(result).startswith("error: cannot reach Redis at 127.0.0.1:1 (")


def test_campaign_done_rule():
    t = {"queued": 0, "sending": 0, "deferred": 0}
    assert bulkcmd.campaign_done(t, False)
    assert not bulkcmd.campaign_done({**t, "queued": 1}, True)
    assert not bulkcmd.campaign_done({**t, "sending": 1}, False)
    assert not bulkcmd.campaign_done({**t, "deferred": 3}, False)
    assert bulkcmd.campaign_done({**t, "deferred": 3}, True)


def test_follow_prints_the_outcome(env, r, mixed, capsys):
    out = ok(env, "bulk", mixed, "--sender", "Dreams", "--yes", "--detach")
    cid = campaign_of(out)
    p = producer(env)
    r.hset(p.keys.campaign(cid), mapping={"sent": 3, "failed": 1, "f:-117": 1})
    buf = io.StringIO()
    assert bulkcmd._follow(p, cid, "Dreams", out=buf) == 0
    assert "100.0%" in buf.getvalue()
    printed = capsys.readouterr().out
    assert f"campaign {cid} done: sent 3, failed 1, expired 0, unknown 0" in printed
    assert "failed -117 (" in printed


def test_pause_is_noted_once(env, r, capsys):
    p = producer(env)
    seen: list[str | None] = [None]
    p.pause("Dreams")
    for _ in range(3):
        bulkcmd._note_pause(p, "Dreams", seen, io.StringIO())
    p.resume("Dreams")
    bulkcmd._note_pause(p, "Dreams", seen, io.StringIO())
    assert capsys.readouterr().err.count("sending is paused (operator)") == 1
    assert seen == [None]


def test_held_list_and_settle(env, r):
    from dreams_sms.config import Settings
    from dreams_sms.producer import Producer
    from dreams_sms.queue.jobs import UNKNOWN, Job

    p = Producer(Settings(redis_url=env["REDIS_URL"]), app=object())
    p.r.hset(p.keys.campaign("cx"), mapping={"total": 2, "unknown": 2})
    p.r.hset(p.keys.seqs, "cx", 2)
    jobs = [Job(f"cx-{i}", "966551234567", f"t{i}", "Dreams") for i in (1, 2)]
    p.r.hset(p.keys.status("cx"), mapping={j.seq: UNKNOWN for j in jobs})
    p.r.hset(p.keys.held, mapping={j.id: j.pack() for j in jobs})  # as the drain holds them
    listing = ok(env, "held")
    assert "cx-1" in listing and "cx-2" in listing
    assert "1 message(s) marked sent" in ok(env, "held", "delivered", "cx-1")
    assert "no held messages" not in ok(env, "held")
    assert "1 message(s) queued again" in ok(env, "held", "resend", "--all")
    assert "no held messages" in ok(env, "held")
    assert p.status("cx-1").state == "sent"
    assert p.status("cx-2").state == "queued"


def test_cancel_a_campaign(env, r):
    from dreams_sms.config import Settings
    from dreams_sms.producer import Producer

    p = Producer(Settings(redis_url=env["REDIS_URL"]))
    cid = p.send_bulk("Dreams", [("0551234567", "oops wrong text")] * 5)
    out = ok(env, "cancel", cid)
    assert f"cancelled {cid}" in out and "5 queued messages will be dropped" in out
    assert r.hget(KEYS.cancelled, cid) == "5"
    result = run(env, "cancel", "c-unknown")
    assert result.exit_code == 2 and "unknown campaign" in result.stderr
    table = ok(env, "status", cid).splitlines()
    header = [c.strip() for c in table[1].strip("|").split("|")]
    values = [c.strip() for c in table[3].strip("|").split("|")]
    assert header[-1] == "cancelled" and values[0] == cid


# ------------------------------------------------------ one line for every error


def test_limits_set_refuses_a_non_number(env, r):
    line = one_line(run(env, "limits", "--set", "Promo", "abc"), 2)
    assert "'abc' is not a daily limit" in line and "--set" in line
    assert r.exists(KEYS.limits, KEYS.limits_seed) == 0


def test_limits_set_refuses_a_negative_limit(env, r):
    line = one_line(run(env, "limits", "--set", "Promo", "-5"), 2)
    assert "-5" in line and "--set" in line
    line = one_line(run(env, "limits", "--set", "Promo"), 2)
    assert "requires 2 arguments" in line and "(see: dreams-sms limits --help)" in line


def test_a_usage_error_is_one_line(env):
    line = one_line(run(env, "bulk", "nope.csv"), 2)
    assert "dreams-sms bulk --help" in line


def test_pause_refuses_an_empty_sender(env, r):
    line = one_line(run(env, "pause", "--sender", ""), 2)
    assert "sender" in line
    assert r.exists(KEYS.pauses) == 0 and r.keys(KEYS.sender_paused("*")) == []


def test_resume_refuses_a_sender_never_seen(env, r):
    line = one_line(run(env, "resume", "--sender", "Zzz"), 2)
    assert "unknown sender 'Zzz'" in line
    ok(env, "pause", "--sender", "Fresh")  # paused before it ever queued: known
    assert "resumed Fresh" in ok(env, "resume", "--sender", "Fresh")
    ok(env, "send", "0551234567", "x", "--sender", "Alerts", "--queue")
    assert "resumed Alerts" in ok(env, "resume", "--sender", "Alerts")


def test_held_settle_names_an_unknown_id(env, r):
    line = one_line(run(env, "held", "delivered", "no-such-id"), 2)
    assert "no-such-id" in line and "nothing changed" in line
    one_line(run(env, "held", "resend", "cx-9", "cy-1"), 2)


def test_sandbox_help_lists_its_options(env):
    result = run(env, "sandbox", "--help")
    assert result.exit_code == 0
    for option in ("--port", "--admin", "--latency-ms", "--error-rate", "--error-codes",
                   "--journal", "--drop-after-accept-rate"):
        assert option in result.stdout
    assert "usage: dreams-sms sandbox" in result.stdout


def test_sandbox_bad_option_is_one_line(env):
    line = one_line(run(env, "sandbox", "--port", "eighty"), 2)
    assert "--port" in line


@pytest.fixture
def busy_port() -> Iterator[int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_sandbox_on_a_busy_port_is_one_line(env, busy_port):
    line = one_line(run(env, "sandbox", "--port", str(busy_port)), 1)
    assert line == f"error: port {busy_port} is already in use; pick another with --port"


def test_metrics_on_a_busy_port_is_one_line(env, busy_port):
    line = one_line(run(env, "metrics", "--port", str(busy_port)), 1)
    assert line == f"error: port {busy_port} is already in use; pick another with --port"


def test_flower_on_a_busy_port_is_one_line_in_a_real_process(env, busy_port):
    import subprocess
    import sys

    child_env = {k: v for k, v in os.environ.items() if k not in env}
    child_env.update({k: v for k, v in env.items() if v is not None})
    child_env["DREAMS_FLOWER_AUTH"] = "ops:flowerpw"
    out = subprocess.run([sys.executable, "-m", "dreams_sms", "flower", "--port",
                          str(busy_port)], env=child_env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"error: port {busy_port} is already in use; pick another with --port"]


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[str]:
    from dreams_sms.ops.localredis import LocalRedis

    with LocalRedis(password="hunter22-redis") as server:
        yield server.url


def test_redis_that_needs_a_password(env, locked_redis):
    bare = locked_redis.replace(":hunter22-redis@", "")
    port = bare.rsplit(":", 1)[1].split("/")[0]
    line = one_line(run({**env, "REDIS_URL": bare}, "status"), 1)
    assert line == ("error: Redis needs a password: add it to REDIS_URL "
                    f"(redis://:PASSWORD@127.0.0.1:{port}/0)")
    assert "Redis needs a password" in one_line(run({**env, "REDIS_URL": bare}, "pause"))


def test_redis_that_refuses_the_password(env, locked_redis):
    wrong = locked_redis.replace("hunter22-redis", "not-the-one")
    result = run({**env, "REDIS_URL": wrong}, "status")
    assert "refused the password in REDIS_URL" in one_line(result, 1)
    assert "not-the-one" not in result.output


def test_redis_connection_refused_never_shows_the_password(env):
    result = run({**env, "REDIS_URL": "redis://:hunter22@127.0.0.1:1/0"}, "status")
    line = one_line(result, 1)
    assert line.startswith("error: cannot reach Redis at 127.0.0.1:1 (connection refused)")
    assert "hunter22" not in result.output
    for args in (("limits",), ("held",), ("resume",), ("cancel", "c1")):
        assert "cannot reach Redis" in one_line(run({**env, "REDIS_URL":
                                                      "redis://127.0.0.1:1/0"}, *args), 1)


def test_status_with_a_balance_pause_shows_its_code(env, r):
    p = producer(env)
    p.control.pause(reason="balance", code=-113)
    assert ok(env, "status").splitlines()[0] == "paused: balance (code -113)"
