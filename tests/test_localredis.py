import os

import redis

from dreams_sms.ops.localredis import LocalRedis


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


def test_an_old_redis_server_is_refused_with_one_line(tmp_path, monkeypatch):
    import pytest

    from dreams_sms.errors import ConfigError

    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'Redis server v=6.2.6 sha=00000000:0 bits=64'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=r"^redis-server 7.0 or newer is needed; .* is 6.2$"):
        LocalRedis()


def test_no_redis_server_names_what_to_install(tmp_path, monkeypatch):
    import pytest

    from dreams_sms.errors import ConfigError

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="install Redis 7 or newer"):
        LocalRedis()
