-- settle: record the outcome of jobs we hold (queue/store.py, Store._write): state,
-- counters, XACK+XDEL, lease freed, all in one step; refused for a job that is no
-- longer ours (its lease carries another token, or it is free and its entry pending
-- with another consumer).
-- uses: names, fields, campaign
-- KEYS: 1 lease hash, 2 high stream, 3 normal stream, 4 held, 5 delayed, 6 senders,
--       then (status hash, campaign hash) per campaign.
-- ARGV: 1 group, 2 consumer, 3 token, 4 mode (final|requeue|defer), 5 state value,
--       6 counter, 7 failure counter or '', 8 ttl, 9 due (defer), then per job
--       (id, high, entry, campaign index, seq, packed job).
-- Returns the ids refused (not ours any more).
-- Slots: 1-3 are the sender's; 4-6 are global; campaign keys are each in their own.

local group, consumer, mode, ttl = ARGV[1], ARGV[2], ARGV[4], tonumber(ARGV[8])
local mine = ARGV[3] .. '|'
local n = (#ARGV - 9) / 6
local ids = {}
for j = 0, n - 1 do ids[j + 1] = ARGV[10 + 6 * j] end
local leases = redis.call('HMGET', KEYS[1], unpack(ids))
local refused, entries, freed, per = {}, {{}, {}}, {}, {}
for j = 0, n - 1 do
  local k = 10 + 6 * j
  local id, si, entry = ARGV[k], 3 - tonumber(ARGV[k + 1]), ARGV[k + 2]
  local ci, seq, packed = tonumber(ARGV[k + 3]), ARGV[k + 4], ARGV[k + 5]
  local ok
  if leases[j + 1] then
    ok = string.find(leases[j + 1], mine, 1, true) == 1
  else  -- free: ours only while its entry is still pending with us
    local p = redis.call('XPENDING', KEYS[si], group, entry, entry, 1)
    ok = p[1] ~= nil and p[1][2] == consumer
  end
  if not ok then
    table.insert(refused, id)
  else
    local list = entries[si - 1]
    list[#list + 1] = entry
    if leases[j + 1] then freed[#freed + 1] = id end
    local c = per[ci]
    if not c then c = {seqs = {}, n = 0}; per[ci] = c end
    c.n = c.n + 1
    if mode == 'final' then
      local q = c.seqs
      q[#q + 1] = seq
      q[#q + 1] = ARGV[5]
      if ARGV[5] == ST.UNKNOWN then redis.call('HSET', KEYS[4], id, packed) end
    elseif mode == 'defer' then
      table.insert(c.seqs, seq); table.insert(c.seqs, ST.DEFERRED .. ':' .. ARGV[9])
      redis.call('ZADD', KEYS[5], ARGV[9], packed)
    else
      table.insert(c.seqs, seq)
      redis.call('XADD', KEYS[si], '*', unpack(fields(cjson.decode(packed))))
    end
  end
end
for si = 2, 3 do
  local list = entries[si - 1]
  if #list > 0 then
    redis.call('XACK', KEYS[si], group, unpack(list))
    redis.call('XDEL', KEYS[si], unpack(list))
  end
end
if #freed > 0 then redis.call('HDEL', KEYS[1], unpack(freed)) end
for ci, c in pairs(per) do
  local st, camp = KEYS[5 + 2 * ci], KEYS[6 + 2 * ci]
  if mode == 'final' then
    redis.call('HSET', st, unpack(c.seqs))
    redis.call('HINCRBY', camp, ARGV[6], c.n)
    if ARGV[7] ~= '' then redis.call('HINCRBY', camp, ARGV[7], c.n) end
  elseif mode == 'defer' then
    redis.call('HSET', st, unpack(c.seqs))
    redis.call('HINCRBY', camp, CF.DEFERRED, c.n)
  else
    redis.call('HDEL', st, unpack(c.seqs))
  end
  keep_or_expire(st, camp, ttl)
end
return refused
