import os

import redis

from dreams_sms.localredis import LocalRedis


def test_private_redis_is_not_the_machine_one(redis_server):
    if "DREAMS_TEST_REDIS_URL" not in os.environ:
        assert not redis_server.startswith("redis://127.0.0.1:6379/")
    assert redis.Redis.from_url(redis_server).ping()


def test_aof_survives_restart(tmp_path):
    with LocalRedis(appendonly=True, directory=tmp_path) as srv:
        c = redis.Redis.from_url(srv.url)
        c.set("k", "v")
        c.execute_command("BGREWRITEAOF")
        c.close()
        srv.restart()
        assert redis.Redis.from_url(srv.url).get("k") == b"v"
