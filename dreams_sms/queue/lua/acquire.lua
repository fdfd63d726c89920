-- acquire: tokens for new drain chains, keeping at most `want` alive per sender
-- (queue/control.py, Control.acquire_slots).
-- KEYS: 1 slot zset
-- ARGV: 1 now_ms, 2 ttl_ms, 3 want, then tokens
-- Returns the tokens granted.
-- Slots: one, the sender's.

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local free = tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[1])
local out = {}
local i = 4
while free > 0 and ARGV[i] do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[i])
  table.insert(out, ARGV[i])
  free = free - 1
  i = i + 1
end
return out
