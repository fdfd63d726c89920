-- settle_held: an operator's verdict on held jobs (queue/store.py, Store.settle_held):
-- delivered (sent), or resend (back to its stream). Each id is settled by whoever
-- removes it from the held hash: exactly once.
-- uses: names, fields
-- KEYS: 1 held, 2 senders, then (stream, status hash, campaign hash) per job.
-- ARGV: 1 'delivered' or 'resend', then (id, seq, packed job) per job.
-- Returns how many were settled.
-- Slots: 1 and 2 are global; the streams of any senders and campaign keys: many slots.

local n = 0
for k = 2, #ARGV, 3 do
  local j = (k - 2) / 3
  local stream, st, camp = KEYS[3 + 3 * j], KEYS[4 + 3 * j], KEYS[5 + 3 * j]
  if redis.call('HDEL', KEYS[1], ARGV[k]) == 1 then
    n = n + 1
    redis.call('HINCRBY', camp, CF.UNKNOWN, -1)
    if ARGV[1] == 'delivered' then
      redis.call('HSET', st, ARGV[k + 1], ST.SENT)
      redis.call('HINCRBY', camp, CF.SENT, 1)
    else
      local d = cjson.decode(ARGV[k + 2])
      redis.call('HDEL', st, ARGV[k + 1])
      redis.call('PERSIST', st)  -- waiting again: kept until it is settled
      redis.call('PERSIST', camp)
      redis.call('XADD', stream, '*', unpack(fields(d)))
      redis.call('SADD', KEYS[2], d.s)
    end
  end
end
return n
