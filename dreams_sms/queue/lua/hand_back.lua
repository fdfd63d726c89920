-- hand_back: at a chain's end, entries we still hold without a lease go back to
-- their stream's tail (queue/lease.py, Leases.hand_back), so any worker can take
-- them at once instead of after the takeover timer.
-- uses: fields
-- KEYS: 1 high stream, 2 normal stream, 3 lease hash
-- ARGV: 1 group, 2 consumer
-- Returns how many entries left us.
-- Slots: one, the sender's.

local n = 0
for si = 1, 2 do
  local pending = redis.call('XPENDING', KEYS[si], ARGV[1], '-', '+', 1000, ARGV[2])
  for _, p in ipairs(pending) do
    local entry = p[1]
    local rows = redis.call('XRANGE', KEYS[si], entry, entry)
    local keep = false
    if rows[1] then
      local f = rows[1][2]
      local id = decoded(f).i
      if id and redis.call('HEXISTS', KEYS[3], id) == 1 then keep = true
      elseif id then redis.call('XADD', KEYS[si], '*', unpack(f)) end
    end
    if not keep then
      redis.call('XACK', KEYS[si], ARGV[1], entry)
      redis.call('XDEL', KEYS[si], entry)
      n = n + 1
    end
  end
end
return n
