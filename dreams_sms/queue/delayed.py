"""Jobs that wait: scheduled sends (`send_at`) and retries after a delay.

They sit in one sorted set scored by due time; beat moves the due ones back
into their sender's stream. Nothing is parked in Celery with a long countdown
(on Redis an ETA past the visibility timeout runs twice).
"""

from __future__ import annotations

import redis

from dreams_sms.queue.keys import Keys

# KEYS[1] delayed zset; ARGV: now, limit, prefix
_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local p = ARGV[3]
for _, raw in ipairs(due) do
  local d = cjson.decode(raw)
  local stream = p .. ':q:{' .. d.s .. '}'
  if d.h == '1' then stream = stream .. ':hi' end
  local f = {'i', d.i, 't', d.t, 'm', d.m}
  if d.o then table.insert(f, 'o'); table.insert(f, d.o) end
  if d.x then table.insert(f, 'x'); table.insert(f, d.x) end
  if d.a then table.insert(f, 'a'); table.insert(f, d.a) end
  redis.call('XADD', stream, '*', unpack(f))
  redis.call('ZREM', KEYS[1], raw)
  redis.call('SADD', p .. ':senders', d.s)
  local cid, seq = string.match(d.i, '^(.*)-(%d+)$')
  if cid then
    local st = p .. ':c:' .. cid .. ':s'
    local cur = redis.call('HGET', st, seq)
    if cur and string.sub(cur, 1, 1) == 'D' then
      redis.call('HDEL', st, seq)
      redis.call('HINCRBY', p .. ':c:' .. cid, 'deferred', -1)
    end
  end
end
return #due
"""


class Delayed:
    def __init__(self, r: redis.Redis, keys: Keys):
        self.r = r
        self.keys = keys
        self._promote = r.register_script(_PROMOTE)

    def promote(self, now: float, limit: int = 5000) -> int:
        """Move due jobs into their streams; returns how many moved."""
        return int(self._promote(keys=[self.keys.delayed], args=[now, limit, self.keys.prefix]))

    def size(self) -> int:
        return self.r.zcard(self.keys.delayed)
