-- close: the provider said -123; the sender is closed until the next local midnight
-- (queue/quota.py, DailyQuota.close_for_today).
-- uses: expire_at
-- KEYS: 1 closed flag
-- ARGV: 1 expire_at
-- Returns 1.
-- Slots: one, the sender's.

redis.call('SET', KEYS[1], '1', 'EXAT', at)
return 1
