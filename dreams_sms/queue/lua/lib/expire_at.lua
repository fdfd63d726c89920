-- Prelude: `at` = ARGV[1] (an epoch to expire a key at), but never sooner than an
-- hour of real server time, so a `now` that lags the server (a test clock set in
-- the past) cannot make a key vanish on write and silently reopen the quota.
local at = tonumber(ARGV[1])
local floor = tonumber(redis.call('TIME')[1]) + 3600
if at < floor then at = floor end
