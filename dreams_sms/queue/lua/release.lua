-- release: free our leases after a certain refusal (queue/lease.py, Leases.release);
-- the entries stay pending with us.
-- KEYS: 1 lease hash
-- ARGV: 1 token, then ids
-- Returns how many leases were freed.
-- Slots: one, the sender's.

local n = 0
for k = 2, #ARGV do
  local raw = redis.call('HGET', KEYS[1], ARGV[k])
  if raw and string.sub(raw, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then
    redis.call('HDEL', KEYS[1], ARGV[k])
    n = n + 1
  end
end
return n
