import itertools
import re
from pathlib import Path

import pytest

from dreams_sms.config import ENV, Settings, env_table
from dreams_sms.errors import ConfigError

ENV_EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"
SANDBOX = "http://sandbox:8025/index.php/api"


def test_defaults_point_at_the_real_provider():
    s = Settings.from_env({})
    assert s.base_url == "https://www.dreams.sa/index.php/api"
    assert s.timezone == "Asia/Riyadh"
    assert s.batch_size == 100


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("DREAMS_BATCH_SIZE", "0"),
        ("DREAMS_BATCH_SIZE", "ten"),
        ("DREAMS_TIMEZONE", "Mars/Olympus"),
        ("DREAMS_BASE_URL", "ftp://x"),
        ("REDIS_URL", "localhost:6379"),
        ("DREAMS_DAILY_LIMITS", "A=5,B"),
        ("DREAMS_READ_TIMEOUT", "-1"),
        ("DREAMS_MULTI_FORMAT", "xml"),
        ("DREAMS_TEST_CLOCK", "maybe"),
        ("DREAMS_KEY_WINDOW", "59"),
        ("DREAMS_KEY_WINDOW", "0"),
        ("DREAMS_STATUS_TTL", "86399"),
        ("DREAMS_STATUS_TTL", "3600"),
        ("DREAMS_RETRY_DELAY", "0"),
        ("DREAMS_RETRY_DELAY", "-1"),
        ("DREAMS_MAX_SEGMENTS", "0"),
        ("DREAMS_MAX_SEGMENTS", "256"),
        *[(var, bad) for var, (_, parse) in ENV.items()
          if getattr(parse, "__name__", "") in ("_pos_float", "_above_zero")
          for bad in ("nan", "NaN", "inf", "-inf", "Infinity", "1e999")],
    ],
)
def test_invalid_values_fail_with_one_line_naming_the_variable(var, value):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({var: value})
    text = str(info.value)
    assert text.startswith(var)
    assert "\n" not in text


def test_secret_is_never_shown():
    s = Settings.from_env(
        {
            "DREAMS_SECRET_KEY": "top-secret-123",
            "DREAMS_CLIENT_SECRET": "cs-987",
            "REDIS_URL": "redis://:pw-555@h:6379/0",
        }
    )
    assert s.secret_key.reveal() == "top-secret-123"
    for text in (repr(s), str(s)):
        assert "top-secret-123" not in text
        assert "cs-987" not in text
        assert "pw-555" not in text


def test_secret_from_file(tmp_path):
    f = tmp_path / "key"
    f.write_text("from-file\n")
    assert Settings.from_env({"DREAMS_SECRET_KEY_FILE": str(f)}).secret_key.reveal() == "from-file"
    with pytest.raises(ConfigError, match="DREAMS_SECRET_KEY_FILE"):
        Settings.from_env({"DREAMS_SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_per_sender_limits_and_fallback():
    s = Settings.from_env(
        {"DREAMS_DAILY_LIMITS": "Promo=5000, Alerts=10", "DREAMS_DAILY_LIMIT": "7"}
    )
    assert s.limit_for("Promo") == 5000
    assert s.limit_for("Alerts") == 10
    assert s.limit_for("Other") == 7


def test_credentials_required_only_when_asked():
    s = Settings.from_env({})
    with pytest.raises(ConfigError, match="DREAMS_USER"):
        s.require_credentials()
    Settings.from_env({"DREAMS_USER": "u", "DREAMS_SECRET_KEY": "k"}).require_credentials()


def test_every_float_setting_is_checked_for_nan_and_inf():
    floats = [var for var, (_, parse) in ENV.items()
              if getattr(parse, "__name__", "") in ("_pos_float", "_above_zero")]
    assert {"DREAMS_READ_TIMEOUT", "DREAMS_RETRY_DELAY", "DREAMS_MAX_AGE"} <= set(floats)
    for _var, (_, parse) in ENV.items():  # no parser lets a non-finite number through
        for bad in ("nan", "inf", "-inf", "1e999", "A=nan"):
            try:
                value = parse(bad)  # type: ignore[operator]
            except ValueError:
                continue
            assert not isinstance(value, float | int) or isinstance(value, bool)


def test_minimums_are_accepted_at_the_edge():
    s = Settings.from_env({"DREAMS_KEY_WINDOW": "60", "DREAMS_STATUS_TTL": "86400",
                           "DREAMS_RETRY_DELAY": "0.1", "DREAMS_MAX_SEGMENTS": "3"})
    assert (s.key_window, s.status_ttl, s.retry_delay, s.max_segments) == (60, 86400, 0.1, 3)
    assert Settings.from_env({}).max_segments == 10


def test_minimum_errors_say_why_in_one_line():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"DREAMS_STATUS_TTL": "60"})
    assert str(info.value).startswith("DREAMS_STATUS_TTL=60 is invalid: must be at least 86400")
    assert "\n" not in str(info.value)


def test_reconcile_needs_url():
    with pytest.raises(ConfigError, match="DREAMS_RECONCILE_URL"):
        Settings.from_env({"DREAMS_ON_UNKNOWN": "reconcile"})


@pytest.mark.parametrize(
    ("base", "reconcile"),
    [
        (SANDBOX, "http://sandbox:8025"),
        (SANDBOX, "http://SANDBOX:8025/"),
        ("http://127.0.0.1/index.php/api", "http://127.0.0.1:80"),
        ("https://sandbox.internal/api", "https://sandbox.internal:443"),
    ],
)
def test_reconcile_on_the_same_origin_is_accepted(base, reconcile):
    s = Settings.from_env({"DREAMS_ON_UNKNOWN": "reconcile", "DREAMS_BASE_URL": base,
                           "DREAMS_RECONCILE_URL": reconcile})
    assert s.on_unknown == "reconcile"


@pytest.mark.parametrize(
    ("base", "reconcile"),
    [
        (SANDBOX, "http://sandbox:8026"),
        (SANDBOX, "https://sandbox:8025"),
        (SANDBOX, "http://other:8025"),
        (None, "http://sandbox:8025"),  # the default base URL is the real API
        ("https://www.dreams.sa/index.php/api", "https://www.dreams.sa"),
        ("https://dreams.sa/index.php/api", "https://dreams.sa"),
        ("https://api.dreams.sa/index.php/api", "https://api.dreams.sa"),
    ],
)
def test_reconcile_elsewhere_or_against_the_real_api_is_refused(base, reconcile):
    env = {"DREAMS_ON_UNKNOWN": "reconcile", "DREAMS_RECONCILE_URL": reconcile}
    if base is not None:
        env["DREAMS_BASE_URL"] = base
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert "\n" not in str(info.value) and "DREAMS_" in str(info.value)
    assert Settings.from_env({**env, "DREAMS_ON_UNKNOWN": "hold"}).on_unknown == "hold"


def _env_lines() -> list[str]:
    return ENV_EXAMPLE.read_text().splitlines()


def _active(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        if m:
            out[m[1]] = m[2]  # like Compose's env_file, a later line wins
    return out


def _block(lines: list[str], start: str, end: str) -> list[int]:
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    last = next(i for i, line in enumerate(lines) if i > first and line.startswith(end))
    return [i for i in range(first, last) if re.fullmatch(r"#? ?[A-Z][A-Z0-9_]*=.*", lines[i])]


def test_env_example_with_the_sandbox_block_commented_out_holds():
    lines = _env_lines()
    sandbox = _block(lines, "# (1)", "# (2)")
    assert len(sandbox) >= 5
    for i in sandbox:
        lines[i] = "# " + lines[i]
    s = Settings.from_env(_active(lines))
    assert s.on_unknown == "hold"


def test_env_example_has_no_half_switch_that_reconciles_against_the_wrong_provider():
    """Comment out any subset of block (1), with or without block (2) switched on:
    the settings either refuse to load or never reconcile anywhere but the sandbox
    the messages went to."""
    lines = _env_lines()
    sandbox = _block(lines, "# (1)", "# (2)")
    real = _block(lines, "# (2)", "# Optional OAuth")
    assert all(lines[i].startswith("# ") for i in real)
    for n in range(len(sandbox) + 1):
        for off in itertools.combinations(sandbox, n):
            for switch_real in (False, True):
                trial = list(lines)
                for i in off:
                    trial[i] = "# " + trial[i]
                if switch_real:
                    for i in real:
                        trial[i] = trial[i][2:]
                try:
                    s = Settings.from_env(_active(trial))
                except ConfigError:
                    continue
                if s.on_unknown == "reconcile":
                    assert s.base_url.startswith("http://sandbox:8025/")
                    assert s.reconcile_url == "http://sandbox:8025"


def test_env_table_lists_every_variable():
    names = {row[0] for row in env_table()}
    assert "DREAMS_BATCH_SIZE" in names and "DREAMS_SECRET_KEY[_FILE]" in names


def test_worker_refuses_to_start_with_one_line_naming_the_variable():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMS_")}
    env["DREAMS_TIMEZONE"] = "Mars/Olympus"
    out = subprocess.run([sys.executable, "-m", "celery", "-A", "dreams_sms.worker", "worker"],
                         env=env, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines == ["dreams-sms: DREAMS_TIMEZONE=Mars/Olympus is invalid: "
                     "is not a known IANA time zone"]


def test_a_refused_url_is_quoted_without_its_password():
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"REDIS_URL": "http://:hunter2@redis.internal:6379/0"})
    assert "hunter2" not in str(exc.value)
    assert "http://:***@redis.internal" in str(exc.value)
