-- retake: lease jobs again right before a call (queue/lease.py, Leases.retake).
-- A job is (re)granted when its lease is ours, or free while its entry is still
-- pending with us.
-- uses: lease
-- KEYS: 1 lease hash, 2 high stream, 3 normal stream, 4 clock
-- ARGV: 1 group, 2 consumer, 3 token, 4 lease ms, 5 test clock, then (id, high, entry)...
-- Returns {now, granted id...}.
-- Slots: 1-3 are the sender's; 4 (the test clock) is global.

local now = now_s(KEYS[4], ARGV[5])
local untl = string.format('%d', now * 1000 + tonumber(ARGV[4]))
local out = {tostring(now)}
for k = 6, #ARGV, 3 do
  local id, stream, entry = ARGV[k], KEYS[3 - tonumber(ARGV[k + 1])], ARGV[k + 2]
  local owner, _, t0 = parse_lease(redis.call('HGET', KEYS[1], id))
  local ok = owner == ARGV[3]
  if not owner and pel_owner(stream, ARGV[1], entry) == ARGV[2] then
    ok = true
    t0 = tostring(now)
  end
  if ok then
    redis.call('HSET', KEYS[1], id, ARGV[3] .. '|' .. untl .. '|' .. t0)
    redis.call('XCLAIM', stream, ARGV[1], ARGV[2], 0, entry, 'JUSTID')
    table.insert(out, id)
  end
end
return out
