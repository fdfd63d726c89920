import pytest

from dreams_sms.config import Settings, env_table
from dreams_sms.errors import ConfigError


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


def test_reconcile_needs_url():
    with pytest.raises(ConfigError, match="DREAMS_RECONCILE_URL"):
        Settings.from_env({"DREAMS_ON_UNKNOWN": "reconcile"})


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
