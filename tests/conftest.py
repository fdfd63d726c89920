"""Shared fixtures: a private redis-server, settings pointing at it; an in-process
sandbox (`sandbox`, `sandbox_admin`) for unit tests that need real HTTP; a whole
private stack (`stack`, `admin`, `p`) for the end-to-end modules.

The suite never writes to a Redis it did not start: an exported REDIS_URL is
ignored (and removed from the environment, so nothing a test starts reads it).
DREAMS_TEST_REDIS_URL points the suite at another Redis; since every test
flushes that database, the run stops at once unless it is empty.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
import redis

from dreams_sms.ops.localredis import LocalRedis
from dreams_sms.provider.redact import redact_url
from dreams_sms.sandbox.server import SandboxServer
from dreams_sms.sandbox.testing import SandboxAdmin, running_sandbox

#: The variable that points the suite at a Redis it did not start.
TEST_REDIS_VAR = "DREAMS_TEST_REDIS_URL"

# Read by Settings.from_env() and by every process a test starts: never the user's.
os.environ.pop("REDIS_URL", None)


def _checked_external(url: str) -> str:
    """`url` if its database is empty; else stop the run before any test flushes it."""
    shown = redact_url(url)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5)
        keys = client.dbsize()
        client.close()
    except (redis.RedisError, ValueError) as exc:
        pytest.exit(f"{TEST_REDIS_VAR}={shown}: cannot use it ({redact_url(str(exc))})",
                    returncode=2)
    if keys:
        pytest.exit(f"{TEST_REDIS_VAR}={shown} holds {keys} keys: the tests flush that "
                    "database, so point it at an empty one (or unset it to use a private "
                    "redis-server)", returncode=2)
    return url


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A private redis-server for the session, or the empty one DREAMS_TEST_REDIS_URL names."""
    external = os.environ.get(TEST_REDIS_VAR, "").strip()
    if external:
        os.environ["REDIS_URL"] = _checked_external(external)
        yield external
        return
    with LocalRedis() as server:
        os.environ["REDIS_URL"] = server.url
        yield server.url
    os.environ.pop("REDIS_URL", None)


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """A clean database for each test."""
    r = redis.Redis.from_url(redis_server)
    r.flushdb()
    yield redis_server
    r.close()


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """An in-process sandbox on a free port, shared by one module's tests."""
    with running_sandbox() as server:
        yield server


@pytest.fixture
def sandbox_admin(sandbox: SandboxServer) -> SandboxAdmin:
    """The admin client of `sandbox`, its sandbox back to the seed for each test."""
    a = SandboxAdmin(sandbox.url)
    a.reset()
    return a


@pytest.fixture(scope="module")
def stack():
    """A whole private stack per module (modules override it for other options)."""
    from e2e_helpers import make_stack

    s = make_stack(workers=1, concurrency=2)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def admin(stack):
    """The stack's sandbox, back to its seed for each test."""
    a = SandboxAdmin(stack.sandbox_url)
    a.reset()
    return a


@pytest.fixture
def p(stack, admin):
    """A producer on the stack, with flags, clock and limits reset around the test."""
    from e2e_helpers import producer_for, reset_queue

    prod = producer_for(stack)
    reset_queue(prod)
    yield prod
    reset_queue(prod)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the chaos scenarios' table (enqueued vs the sandbox's record)."""
    helpers = sys.modules.get("e2e_helpers")  # loaded only when end-to-end tests ran
    RESULTS = getattr(helpers, "CHAOS_RESULTS", None)
    if not RESULTS:
        return
    cols = ["scenario", "enqueued", "accepted_once", "duplicates", "lost", "failed_with_code",
            "held_unknown", "wall_s"]
    from dreams_sms.ops.progress import table

    terminalreporter.write_sep("=", "chaos scenarios")
    terminalreporter.write_line(table([[r.get(c, "") for c in cols] for r in RESULTS], cols))
    drops = [r for r in RESULTS if "drops" in r]
    for r in drops:
        terminalreporter.write_line(
            f"{r['scenario']}: {r['drops']} batches accepted then dropped; a blind resend would "
            f"have sent up to {r['drops'] * 100} duplicates, this policy sent {r['duplicates']}")
