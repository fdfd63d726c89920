"""The suite's own guard: it never writes to a Redis it did not start.

Runs a small test session (with this suite's conftest) in a subprocess next to
a stand-in for "the user's Redis" holding a key, and checks the key survives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dreams_sms.ops.localredis import LocalRedis

REPO = Path(__file__).resolve().parents[1]

INNER_TEST = '''
import os

import redis


def test_writes_and_flushes(redis_url):
    outside = os.environ.get("OUTSIDE_URL")
    print("SUITE_REDIS", redis_url)
    assert os.environ["REDIS_URL"] == redis_url
    if outside and not os.environ.get("DREAMS_TEST_REDIS_URL"):
        assert redis_url != outside
    redis.Redis.from_url(redis_url).set("suite-key", "1")
'''


@pytest.fixture(scope="module")
def users_redis() -> Iterator[LocalRedis]:
    """Stands in for a Redis the user runs, with data in database 0."""
    with LocalRedis() as server:
        yield server


@pytest.fixture
def precious(users_redis: LocalRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(users_redis.url, decode_responses=True)
    client.flushall()
    client.set("precious", "keep me")
    yield client
    client.close()


def inner_session(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    shutil.copy2(REPO / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    base = {k: v for k, v in os.environ.items()
            if k not in ("REDIS_URL", "DREAMS_TEST_REDIS_URL", "PYTEST_ADDOPTS")}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), base.get("PYTHONPATH")]))
    base.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                           str(tmp_path)], cwd=tmp_path, env=base, capture_output=True,
                          text=True, timeout=120, check=False)


def test_an_exported_redis_url_is_ignored(tmp_path, users_redis, precious):
    result = inner_session(tmp_path, REDIS_URL=users_redis.url, OUTSIDE_URL=users_redis.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert precious.get("precious") == "keep me"
    assert precious.get("suite-key") is None
    assert f"SUITE_REDIS {users_redis.url}" not in result.stdout


def test_a_test_redis_that_is_not_empty_stops_the_run(tmp_path, users_redis, precious):
    result = inner_session(tmp_path, DREAMS_TEST_REDIS_URL=users_redis.url)
    assert result.returncode == 2, result.stdout + result.stderr
    said = [ln for ln in result.stdout.splitlines() if "DREAMS_TEST_REDIS_URL" in ln]
    assert len(said) == 1 and "holds 1 keys" in said[0] and "empty" in said[0], result.stdout
    assert "SUITE_REDIS" not in result.stdout  # no test ran
    assert precious.get("precious") == "keep me"


def test_an_empty_test_redis_is_used(tmp_path, users_redis, precious):
    empty_db = users_redis.url.rsplit("/", 1)[0] + "/3"
    result = inner_session(tmp_path, DREAMS_TEST_REDIS_URL=empty_db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUITE_REDIS {empty_db}" in result.stdout
    assert precious.get("precious") == "keep me"


def test_an_unreachable_test_redis_is_one_line(tmp_path):
    result = inner_session(tmp_path, DREAMS_TEST_REDIS_URL="redis://:hunter22@127.0.0.1:1/0")
    assert result.returncode == 2
    said = [ln for ln in result.stdout.splitlines() if "DREAMS_TEST_REDIS_URL" in ln]
    assert len(said) == 1 and "cannot use it" in said[0], result.stdout
    assert "hunter22" not in result.stdout + result.stderr
