"""The OAuth token shared by all workers through Redis: one renewal for many."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from dreams_sms.config import Secret, Settings
from dreams_sms.provider.oauth import OAuthClient
from dreams_sms.queue.tokenstore import RedisTokenStore, SharedTokenHolder


def all_at_once(holders) -> list[str]:
    """Every holder asks for a token at the same time, as workers do."""
    got: list[str] = []
    threads = [threading.Thread(target=lambda h=h: got.append(h())) for h in holders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


def test_many_workers_one_generate_then_one_refresh(sandbox, sandbox_admin, redis_url):
    sandbox_admin.token_ttl(8)  # roomy: a loaded machine must not see it expire mid-race
    settings = Settings(base_url=sandbox.api_url, oauth_url=sandbox.oauth_url,
                        client_id="demo-client", client_secret=Secret("demo-client-secret"))
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    skew = [0.0]

    def clock() -> float:
        return time.time() + skew[0]

    holders = [SharedTokenHolder(OAuthClient(settings, clock=clock), RedisTokenStore(r, "t:oauth"),
                                 margin=1.5, clock=clock)
               for _ in range(6)]
    tokens = all_at_once(holders)
    assert len(set(tokens)) == 1
    calls = sandbox_admin.stats()["calls"]
    assert calls.get("token/generate", 0) == 1
    # Near expiry every holder wants a new one: exactly one refresh happens.
    skew[0] = 6.6  # past expires_at - 1.5 s for the holders
    renewed = all_at_once(holders)
    assert len(set(renewed)) == 1 and renewed[0] != tokens[0]
    calls = sandbox_admin.stats()["calls"]
    assert calls.get("token/refresh", 0) + calls.get("token/generate", 0) == 2
    assert "demo-client-secret" not in r.get("t:oauth")


def _token(access: str = "acc-0123456789abcdef", refresh: str = "ref-0123456789abcdef"):
    from dreams_sms.provider.oauth import Token

    return Token(access_token=access, token_type="Bearer", expires_in=3600,
                 refresh_token=refresh, obtained_at=time.time())


def test_tokens_are_sealed_at_rest(redis_url):
    r = redis.Redis.from_url(redis_url)
    store = RedisTokenStore(r, "t:sealed", Secret("client-secret-1"), client_id="c1")
    token = _token()
    store.save(token)
    raw = r.get("t:sealed")
    for clear in (b"acc-0123456789abcdef", b"ref-0123456789abcdef", b"client-secret-1",
                  b"access_token", b"Bearer"):
        assert clear not in raw
    assert 0 < r.ttl("t:sealed") <= 3660
    assert store.load() == token
    again = RedisTokenStore(r, "t:sealed", "client-secret-1", client_id="c1")
    assert again.load() == token  # another worker with the same secret opens it


def test_a_token_sealed_with_another_secret_or_in_clear_is_absent(redis_url):
    import json

    r = redis.Redis.from_url(redis_url)
    RedisTokenStore(r, "t:rotated", Secret("old-secret")).save(_token())
    assert RedisTokenStore(r, "t:rotated", Secret("new-secret")).load() is None
    r.set("t:legacy", json.dumps(_token().as_dict()))
    assert RedisTokenStore(r, "t:legacy", Secret("new-secret")).load() is None
    r.set("t:junk", b"\xff\x00not a token")
    assert RedisTokenStore(r, "t:junk", Secret("new-secret")).load() is None


def test_a_store_without_a_secret_never_saves(redis_url):
    from dreams_sms.errors import ConfigError

    r = redis.Redis.from_url(redis_url)
    store = RedisTokenStore(r, "t:nosecret")
    with pytest.raises(ConfigError):
        store.save(_token())
    assert r.get("t:nosecret") is None and store.load() is None


def test_rotated_secret_means_a_new_grant_not_an_error(sandbox, sandbox_admin, redis_url):
    settings = Settings(base_url=sandbox.api_url, oauth_url=sandbox.oauth_url,
                        client_id="demo-client", client_secret=Secret("demo-client-secret"))
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    RedisTokenStore(r, "t:rot", Secret("an-older-secret"),
                    client_id="demo-client").save(_token("stale-token-123456"))
    holder = SharedTokenHolder(OAuthClient(settings), RedisTokenStore(r, "t:rot"))
    token = holder()
    assert token != "stale-token-123456"
    assert sandbox_admin.stats()["calls"].get("token/generate", 0) == 1
    assert token not in r.get("t:rot") and "demo-client-secret" not in r.get("t:rot")
