"""Secret hygiene: a campaign run with known secrets, then a search for them in
every Redis key and value, every log line, Flower's pages and API, the metrics
page and exception texts. Zero hits allowed.

The workers use an OAuth client too, so the search also covers the client
secret and the access and refresh tokens the workers shared through Redis
(read back by opening the sealed value with the client secret)."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
import redis
import requests
from e2e_helpers import make_stack, nums, producer_for, wait_for

from dreams_sms.config import Secret, Settings
from dreams_sms.errors import DreamsError
from dreams_sms.queue.keys import Keys
from dreams_sms.queue.tokenstore import RedisTokenStore
from dreams_sms.sandbox.testing import SandboxAdmin

pytestmark = pytest.mark.e2e

SECRET = "sk-" + secrets.token_hex(12)
REDIS_PW = "rpw-" + secrets.token_hex(8)
AUTH = ("ops", "flower-" + secrets.token_hex(6))
CLIENT_ID = "hygiene-client"
CLIENT_SECRET = "cs-" + secrets.token_hex(12)


def _values(r: redis.Redis) -> list[bytes]:
    out: list[bytes] = []
    for key in r.scan_iter(count=1000):
        out.append(key)
        kind = r.type(key)
        if kind == b"string":
            out.append(r.get(key) or b"")
        elif kind == b"hash":
            for k, v in r.hgetall(key).items():
                out += [k, v]
        elif kind == b"list":
            out += r.lrange(key, 0, -1)
        elif kind == b"set":
            out += list(r.smembers(key))
        elif kind == b"zset":
            out += [m for m, _ in r.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            for _, fields in r.xrange(key):
                for k, v in fields.items():
                    out += [k, v]
    # Celery messages carry base64 bodies: look inside them too.
    decoded = []
    for raw in out:
        try:
            body = json.loads(raw).get("body")
            if isinstance(body, str):
                decoded.append(base64.b64decode(body))
        except (ValueError, AttributeError, TypeError):
            pass
    return out + decoded


@pytest.fixture(scope="module")
def stack():
    s = make_stack(workers=1, concurrency=2, flower=True, flower_auth=":".join(AUTH),
                   metrics=True, redis_password=REDIS_PW,
                   env={"DREAMS_SECRET_KEY": SECRET, "DREAMS_CLIENT_ID": CLIENT_ID,
                        "DREAMS_CLIENT_SECRET": CLIENT_SECRET})
    s.start()
    yield s
    s.stop()


def test_no_secret_anywhere_after_a_campaign(stack):
    admin = SandboxAdmin(stack.sandbox_url)
    admin.account_upsert(user="demo", secret_key=SECRET)
    admin.oauth_client(CLIENT_ID, CLIENT_SECRET, user="demo")
    admin.faults(error_burst=3, http5xx_rate=0.05)
    p = producer_for(stack)
    assert p.settings.secret_key.reveal() == SECRET
    cid = p.send_bulk("Dreams", [(n, f"secret test {i}") for i, n in enumerate(nums(800))])
    p.send("0551234567", "calendar", "Dreams", is_calander=1, calander_date="2031-01-01",
           calander_time="10:00")
    wait_for(lambda: p.campaign_status(cid).done, 120, "the campaign", stack)
    assert p.campaign_status(cid).sent == 800

    # An exception from the provider with the wrong key names no secret.
    from dreams_sms.provider.client import DreamsClient

    wrong = Settings.from_env({**stack.env(), "DREAMS_SECRET_KEY": SECRET + "x"})
    with pytest.raises(DreamsError) as info:
        DreamsClient(wrong).balance()
    texts = [str(info.value), repr(info.value), repr(wrong), repr(p.settings)]

    # The workers sent with a bearer token shared through Redis; open it to know it.
    assert admin.stats()["calls"].get("token/generate", 0) >= 1
    r = redis.Redis.from_url(stack.redis_url)
    store = RedisTokenStore(r, Keys(p.settings.prefix).token, Secret(CLIENT_SECRET),
                            client_id=CLIENT_ID)
    token = store.load()
    assert token is not None and token.access_token and token.refresh_token
    tokens = (token.access_token, token.refresh_token)

    haystack: list[bytes] = [t.encode() for t in texts]
    haystack += _values(redis.Redis.from_url(stack.redis_url))
    haystack += [path.read_bytes() for path in stack.dir.glob("*.log")]
    haystack.append(requests.get(stack.metrics_url, timeout=5).content)
    api = requests.get(stack.flower_url + "/api/tasks", auth=AUTH, timeout=10)
    assert api.status_code == 200 and api.json(), "Flower saw no tasks"
    haystack.append(api.content)
    for uuid in list(api.json())[:20]:
        haystack.append(requests.get(f"{stack.flower_url}/task/{uuid}", auth=AUTH,
                                     timeout=10).content)
    haystack.append(requests.get(stack.flower_url + "/tasks", auth=AUTH, timeout=10).content)
    workers = requests.get(stack.flower_url + "/api/workers?refresh=1", auth=AUTH, timeout=10)
    haystack.append(workers.content)
    for name in workers.json():
        haystack.append(requests.get(f"{stack.flower_url}/worker/{name}", auth=AUTH,
                                     timeout=10).content)

    for needle in (SECRET, REDIS_PW, AUTH[1], CLIENT_SECRET, *tokens):
        hits = [h[:200] for h in haystack if needle.encode() in h]
        assert hits == [], f"{needle[:6]}... found in {hits[:3]}"
    assert len(haystack) > 1000  # the search really covered Redis, logs and Flower
