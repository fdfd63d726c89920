-- promote: move one sender's due delayed jobs (scheduled sends, retries) into its
-- streams (queue/delayed.py, Delayed.promote, which read them with ZRANGEBYSCORE).
-- A job moves only if this call removes it from the delayed set: its ZREM and its
-- XADD happen together, so it is never in both or neither, and two beats never
-- move it twice.
-- uses: names, fields
-- KEYS: 1 delayed, 2 senders, 3 high stream, 4 normal stream,
--       then (status hash, campaign hash) per campaign.
-- ARGV: 1 sender, then per job (packed job, high, campaign index or 0, seq).
-- Returns how many jobs moved.
-- Slots: 3 and 4 are the sender's; 1, 2 and campaign keys are each in their own.

local n = 0
for k = 2, #ARGV, 4 do
  local raw, ci, seq = ARGV[k], tonumber(ARGV[k + 2]), ARGV[k + 3]
  if redis.call('ZREM', KEYS[1], raw) == 1 then
    local stream = KEYS[4]
    if ARGV[k + 1] == '1' then stream = KEYS[3] end
    redis.call('XADD', stream, '*', unpack(fields(cjson.decode(raw))))
    n = n + 1
    if ci > 0 then
      local st, camp = KEYS[3 + 2 * ci], KEYS[4 + 2 * ci]
      local cur = redis.call('HGET', st, seq)
      if cur and string.sub(cur, 1, #ST.DEFERRED) == ST.DEFERRED then
        redis.call('HDEL', st, seq)
        redis.call('HINCRBY', camp, CF.DEFERRED, -1)
      end
    end
  end
end
if n > 0 then redis.call('SADD', KEYS[2], ARGV[1]) end
return n
