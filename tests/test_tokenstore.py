"""The OAuth token shared by all workers through Redis: one renewal for many."""

from __future__ import annotations

import threading

import pytest
import redis

from dreams_sms.config import Secret, Settings
from dreams_sms.oauth import OAuthClient
from dreams_sms.sandbox.testing import SandboxAdmin, running_sandbox
from dreams_sms.tokenstore import RedisTokenStore, SharedTokenHolder


@pytest.fixture(scope="module")
def sandbox():
    with running_sandbox() as srv:
        yield srv


def all_at_once(holders) -> list[str]:
    """Every holder asks for a token at the same time, as workers do."""
    got: list[str] = []
    threads = [threading.Thread(target=lambda h=h: got.append(h())) for h in holders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


def test_many_workers_one_generate_then_one_refresh(sandbox, redis_url):
    admin = SandboxAdmin(sandbox.url)
    admin.reset()
    admin.token_ttl(4)
    settings = Settings(base_url=sandbox.api_url, oauth_url=sandbox.oauth_url,
                        client_id="demo-client", client_secret=Secret("demo-client-secret"))
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    holders = [SharedTokenHolder(OAuthClient(settings), RedisTokenStore(r, "t:oauth"), margin=1.5)
               for _ in range(6)]
    tokens = all_at_once(holders)
    assert len(set(tokens)) == 1
    calls = admin.stats()["calls"]
    assert calls.get("token/generate", 0) == 1
    # Near expiry every holder wants a new one: exactly one refresh happens.
    import time

    time.sleep(2.6)
    renewed = all_at_once(holders)
    assert len(set(renewed)) == 1 and renewed[0] != tokens[0]
    calls = admin.stats()["calls"]
    assert calls.get("token/refresh", 0) + calls.get("token/generate", 0) == 2
    assert "demo-client-secret" not in r.get("t:oauth")
