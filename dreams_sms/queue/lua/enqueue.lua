-- enqueue: one message (producer.py, Producer._put): idempotency key, a sequence
-- number, the stream or the delayed set, counters.
-- uses: names, fields
-- KEYS: 1 idem, 2 campaign hash, 3 stream, 4 senders, 5 delayed, 6 status, 7 sequences,
--       8 campaign index
-- ARGV: 1 has_key, 2 window, 3 cid, 4 sender, 5 due (0 = now), 6 high,
--       7 job fields as JSON (no id), 8 now (the campaign's `created`)
-- Returns {id, 1 when queued now or 0 when the key already had it}.
-- Slots: 3 is the sender's; the others are each in their own.

if ARGV[1] == '1' then
  local existing = redis.call('GET', KEYS[1])
  if existing then return {existing, 0} end
end
local seq = redis.call('HINCRBY', KEYS[7], ARGV[3], 1)
local id = ARGV[3] .. '-' .. seq
local job = cjson.decode(ARGV[7])
job.i = id
if tonumber(ARGV[5]) > 0 then
  job.s = ARGV[4]
  if ARGV[6] == '1' then job.h = '1' end
  redis.call('ZADD', KEYS[5], ARGV[5], cjson.encode(job))
  redis.call('HSET', KEYS[6], seq, ST.DEFERRED .. ':' .. ARGV[5])
  redis.call('HINCRBY', KEYS[2], CF.DEFERRED, 1)
else
  redis.call('XADD', KEYS[3], '*', unpack(fields(job)))
end
redis.call('HINCRBY', KEYS[2], CF.TOTAL, 1)
if redis.call('HSETNX', KEYS[2], CF.CREATED, ARGV[8]) == 1 then
  redis.call('ZADD', KEYS[8], ARGV[8], ARGV[3])  -- listed from when its hash exists
end
redis.call('SADD', KEYS[4], ARGV[4])
if ARGV[1] == '1' then redis.call('SET', KEYS[1], id, 'EX', tonumber(ARGV[2])) end
return {id, 1}
