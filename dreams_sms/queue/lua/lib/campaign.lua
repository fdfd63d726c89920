-- Prelude: a campaign's statuses and counters live as long as any of its messages
-- waits, then `ttl` more seconds (settle and take's folded outcomes share it).
-- Needs the `names` prelude before it.

-- Expire status hash `st` and campaign hash `camp` in `ttl` seconds once every
-- message is done; else keep them.
local function keep_or_expire(st, camp, ttl)
  local v = redis.call('HMGET', camp, CF.TOTAL, unpack(CF.DONE))
  local done = 0
  for k = 2, #v do done = done + tonumber(v[k] or '0') end
  if done >= tonumber(v[1] or '0') then
    redis.call('EXPIRE', st, ttl)
    redis.call('EXPIRE', camp, ttl)
  else
    redis.call('PERSIST', st)
    redis.call('PERSIST', camp)
  end
end
