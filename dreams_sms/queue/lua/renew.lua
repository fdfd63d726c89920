-- renew: the heartbeat's step (queue/lease.py, Leases.renew). Keeps our leases
-- and entries fresh; never takes back what another consumer holds.
-- uses: lease
-- KEYS: 1 lease hash, 2 high stream, 3 normal stream, 4 clock
-- ARGV: 1 group, 2 consumer, 3 token, 4 lease ms, 5 test clock, then (id, high, entry)...
-- Returns how many jobs were kept.
-- Slots: 1-3 are the sender's; 4 (the test clock) is global.

local now = now_s(KEYS[4], ARGV[5])
local untl = string.format('%d', now * 1000 + tonumber(ARGV[4]))
local n = 0
for k = 6, #ARGV, 3 do
  local id, stream, entry = ARGV[k], KEYS[3 - tonumber(ARGV[k + 1])], ARGV[k + 2]
  local owner, _, t0 = parse_lease(redis.call('HGET', KEYS[1], id))
  if owner == ARGV[3] then
    redis.call('HSET', KEYS[1], id, owner .. '|' .. untl .. '|' .. t0)
    redis.call('XCLAIM', stream, ARGV[1], ARGV[2], 0, entry, 'JUSTID')
    n = n + 1
  elseif not owner and pel_owner(stream, ARGV[1], entry) == ARGV[2] then
    redis.call('XCLAIM', stream, ARGV[1], ARGV[2], 0, entry, 'JUSTID')
    n = n + 1
  end
end
return n
