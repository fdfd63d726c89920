-- reserve: grant up to n sends from today's allowance and count them
-- (queue/quota.py, DailyQuota.reserve).
-- uses: expire_at
-- KEYS: 1 counter, 2 closed flag
-- ARGV: 1 expire_at, 2 limit (-1 = no limit), 3 n
-- Returns the grant (0 when the sender is closed for the day).
-- Slots: one, the sender's.

if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local limit = tonumber(ARGV[2])
local grant = tonumber(ARGV[3])
if limit >= 0 then
  local used = tonumber(redis.call('GET', KEYS[1]) or '0')
  if limit - used < grant then grant = limit - used end
end
if grant <= 0 then return 0 end
redis.call('INCRBY', KEYS[1], grant)
redis.call('EXPIREAT', KEYS[1], at)
return grant
