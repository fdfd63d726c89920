-- bulk: one chunk of a campaign (producer.py, Producer.send_bulk): allocate the ids,
-- XADD every job, count them, atomically. The campaign's `rows` moves with the jobs,
-- so a resumed import knows exactly where the last one stopped, even when its client
-- never read this reply.
-- uses: names, fields
-- KEYS: 1 stream, 2 campaign hash, 3 senders, 4 sequences
-- ARGV: 1 sender, 2 cid, 3 expiry or '', 4 rows read through this chunk,
--       then (to, text, options JSON or '') per job
-- Returns how many jobs were queued.
-- Slots: 1 is the sender's; the others are each in their own.

local n = (#ARGV - 4) / 3
local last = redis.call('HINCRBY', KEYS[4], ARGV[2], n)
local first = last - n
local x = ARGV[3]
if x == '' then x = nil end
redis.call('HSET', KEYS[2], CF.ROWS, ARGV[4])
for i = 0, n - 1 do
  local b = 5 + i * 3
  local o = ARGV[b + 2]
  if o == '' then o = nil end
  redis.call('XADD', KEYS[1], '*', unpack(fields({i = ARGV[2] .. '-' .. (first + i + 1),
    t = ARGV[b], m = ARGV[b + 1], o = o, x = x})))
end
redis.call('HINCRBY', KEYS[2], CF.TOTAL, n)
redis.call('SADD', KEYS[3], ARGV[1])
return n
