-- gcra: the shared per-second send rate (queue/rate.py, Gcra.acquire). Times are
-- integer microseconds read with Redis TIME.
-- KEYS: 1 tat (theoretical arrival time)
-- ARGV: 1 interval_us (per unit of cost), 2 burst, 3 cost
-- Returns 0 when admitted (and records the cost), else microseconds to wait.
-- Slots: one.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + cost * interval
local wait
if cost > burst then
  -- Bigger than the bucket: admit only when it is full, so it is never starved.
  wait = tat - now
else
  wait = new_tat - now - burst * interval
end
if wait > 0 then return math.ceil(wait) end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl_ms))
return 0
