-- cancel: everything a campaign queued so far (up to its last sequence number) is
-- cancelled, atomically (producer.py, Producer.cancel).
-- uses: names
-- KEYS: 1 sequences, 2 cancelled, 3 campaign hash
-- ARGV: 1 cid, 2 now
-- Returns the last sequence number cancelled.
-- Slots: each key in its own.

local last = redis.call('HGET', KEYS[1], ARGV[1]) or '0'
redis.call('HSET', KEYS[2], ARGV[1], last)
redis.call('HSET', KEYS[3], CF.CANCELLED_AT, ARGV[2])
return last
