-- prune_campaigns: forget campaigns whose hash has expired (queue/campaigns.py,
-- CampaignIndex.prune). Each is checked and removed in one step, so an id reused in
-- the meantime (its hash created again) is never dropped from the index.
-- KEYS: 1 campaign index, then the campaign hash of each id in ARGV, in order
-- ARGV: the campaign ids
-- Returns how many were removed.
-- Slots: 1 is global; each campaign hash is in its own.

local n = 0
for i = 1, #ARGV do
  local camp = KEYS[i + 1]
  if redis.call('EXISTS', camp) == 0 then
    n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return n
