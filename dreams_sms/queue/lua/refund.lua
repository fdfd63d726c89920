-- refund: give back unused grants (queue/quota.py, DailyQuota.refund).
-- KEYS: 1 counter
-- ARGV: 1 n
-- Returns what was actually taken off (never below 0).
-- Slots: one, the sender's.

local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if used < n then n = used end
if n <= 0 then return 0 end
redis.call('DECRBY', KEYS[1], n)
return n
