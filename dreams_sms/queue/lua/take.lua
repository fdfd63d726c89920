-- take: one round trip before a provider call (queue/lease.py, Leases.take).
-- First the outcome of the last call, when the caller folds it in (what settle.lua
-- would write for a final state, owned the same way); then pause reasons, Redis'
-- clock, the day's quota, takeover of a silent consumer's entries (XAUTOCLAIM),
-- reading (high priority first), and a lease on at most one call's worth of jobs.
-- uses: lease, fields, names, campaign
-- KEYS: 1 pause reasons (hash), 2 sender pause, 3 clock, 4 high stream, 5 normal stream,
--       6 lease hash, 7 quota day A, 8 closed day A, 9 quota day B, 10 closed day B,
--       11 operator limits, 12 configured limits, 13 cancelled campaigns (id -> last seq
--       cancelled), then (14 status hash, 15 campaign hash) per campaign of the
--       outcomes folded in
-- ARGV: 1 group, 2 consumer, 3 token, 4 want, 5 lease ms, 6 midnight A|B,
--       7 start of day A, 8 end of day B, 9 expire-at A, 10 expire-at B, 11 sender,
--       12 claim min-idle ms (0: no takeover), 13 fill (wait for a fuller batch),
--       14 object format (no number twice in a call), 15 test clock,
--       16 token of the outcomes folded in ('' for none), 17 their state value,
--       18 their campaign counter, 19 status ttl, then runs of them: (count, high,
--       campaign index) followed by count (id, seq, entry) triples
-- Returns {status, now, granted, claimed, refused, job...}; refused = ids of the
-- outcomes folded in that were not ours any more (not written); each job is 9 values
-- in a row (no nested list): verdict and high as one code (`s1` = send, high
-- priority: the verdict's first letter, s, u, e or c, and 1 or 0), entry, i, t, m, o, x,
-- a ('' where absent), t0; for 'paused', the reasons instead of jobs.
-- Slots: 4-10 are the sender's ({Sender}); 1, 3, 11, 12 and 13 are global keys; each
-- campaign's two hashes are in their own.

local now = now_s(KEYS[3], ARGV[15])

-- The last call's outcome, folded in: written whatever this take finds next.
local refused = {}
if ARGV[16] ~= '' then
  local group, consumer, mine, value = ARGV[1], ARGV[2], ARGV[16] .. '|', ARGV[17]
  local acks, freed, seqs, counts = {{}, {}}, {}, {}, {}
  local k = 20
  while k <= #ARGV do
    local n, si, ci = tonumber(ARGV[k]), 5 - tonumber(ARGV[k + 1]), tonumber(ARGV[k + 2])
    local first = k + 3  -- (id, seq, entry) triples
    local ids = {}
    for j = 0, n - 1 do ids[j + 1] = ARGV[first + 3 * j] end
    local held = redis.call('HMGET', KEYS[6], unpack(ids))
    local list, q = acks[si - 3], seqs[ci]
    if not q then q = {}; seqs[ci] = q; counts[ci] = 0 end
    for j = 0, n - 1 do
      local at = first + 3 * j
      local id, entry, lease = ARGV[at], ARGV[at + 2], held[j + 1]
      local ok
      if lease then
        ok = string.find(lease, mine, 1, true) == 1
      else  -- free: ours only while its entry is still pending with us
        local p = redis.pcall('XPENDING', KEYS[si], group, entry, entry, 1)
        ok = not p.err and p[1] ~= nil and p[1][2] == consumer
      end
      if ok then
        list[#list + 1] = entry
        if lease then freed[#freed + 1] = id end
        q[#q + 1] = ARGV[at + 1]
        q[#q + 1] = value
        counts[ci] = counts[ci] + 1
      else
        refused[#refused + 1] = id
      end
    end
    k = first + 3 * n
  end
  for si = 4, 5 do
    local list = acks[si - 3]
    if #list > 0 then
      redis.call('XACK', KEYS[si], group, unpack(list))
      redis.call('XDEL', KEYS[si], unpack(list))
    end
  end
  if #freed > 0 then redis.call('HDEL', KEYS[6], unpack(freed)) end
  for ci, q in pairs(seqs) do
    if counts[ci] > 0 then
      local st, camp = KEYS[12 + 2 * ci], KEYS[13 + 2 * ci]
      redis.call('HSET', st, unpack(q))
      redis.call('HINCRBY', camp, ARGV[18], counts[ci])
      keep_or_expire(st, camp, tonumber(ARGV[19]))
    end
  end
end

local reasons = redis.call('HKEYS', KEYS[1])
if #reasons > 0 then
  return {'paused', tostring(now), '0', '0', refused, table.concat(reasons, ',')}
end
local paused = redis.call('GET', KEYS[2])
if paused then return {'paused', tostring(now), '0', '0', refused, paused} end
if now < tonumber(ARGV[7]) or now >= tonumber(ARGV[8]) then
  return {'clock', tostring(now), '0', '0', refused}
end
local qk, ck, exp = KEYS[7], KEYS[8], tonumber(ARGV[9])
if now >= tonumber(ARGV[6]) then qk, ck, exp = KEYS[9], KEYS[10], tonumber(ARGV[10]) end
local floor = tonumber(redis.call('TIME')[1]) + 3600
if exp < floor then exp = floor end

local group, consumer, token = ARGV[1], ARGV[2], ARGV[3]
local want = tonumber(ARGV[4])
local sender = ARGV[11]
local limit = redis.call('HGET', KEYS[11], sender) or redis.call('HGET', KEYS[12], sender)
  or redis.call('HGET', KEYS[12], '*') or 'none'
local room = want
if redis.call('EXISTS', ck) == 1 then room = 0
elseif limit ~= 'none' then
  local used = tonumber(redis.call('GET', qk) or '0')
  if tonumber(limit) - used < room then room = tonumber(limit) - used end
end
if room < 0 then room = 0 end

local streams = {KEYS[4], KEYS[5]}
local now_ms = now * 1000
local lease_until = string.format('%d', now_ms + tonumber(ARGV[5]))
-- The reply: five heads filled in at the end, then 9 values per job (see above).
local out, njobs = {'', '', '', '', refused}, 0
local seen, numbers, leases = {}, {}, {}
local count, single = 0, false
local objfmt = ARGV[14] == '1'
local any_cancelled = redis.call('HLEN', KEYS[13]) > 0
local cuts = {}

local now_s = tostring(now)
local fresh = token .. '|' .. lease_until .. '|' .. now_s
local WIDE = string.rep('-', 200)
local CODE = {send = {'s1', 's0'}, unknown = {'u1', 'u0'}, expired = {'e1', 'e0'},
  cancel = {'c1', 'c0'}}

local function consider(si, entry, d, lease)
  local verdict = nil
  local t0 = now_s
  local value = fresh
  local owner, untl, lt0 = nil, nil, nil
  if lease then owner, untl, lt0 = parse_lease(lease) end
  if owner then
    if owner ~= token then
      if untl > now_ms then return end  -- a live holder: not ours
      verdict = 'unknown'
    end
    t0 = lt0
    value = token .. '|' .. lease_until .. '|' .. t0
  end
  if not verdict then
    local cut = false
    if any_cancelled then
      local cid, seq = string.match(d.i, '^(.*)-(%d+)$')
      if cid then
        if cuts[cid] == nil then cuts[cid] = redis.call('HGET', KEYS[13], cid) or false end
        cut = cuts[cid] and tonumber(seq) <= tonumber(cuts[cid])
      end
    end
    if cut then verdict = 'cancel'
    elseif d.x and tonumber(d.x) <= now then verdict = 'expired'
    else
      if single or count >= room then return end
      if d.o then
        if count > 0 then return end
        single = true
      else
        if objfmt then
          if numbers[d.t] then return end
          numbers[d.t] = true
        end
      end
      count = count + 1
      verdict = 'send'
    end
  end
  leases[#leases + 1] = d.i
  leases[#leases + 1] = value
  local b = 5 + 9 * njobs
  njobs = njobs + 1
  out[b + 1], out[b + 2], out[b + 3], out[b + 4], out[b + 5] = CODE[verdict][si], entry, d.i,
    d.t, d.m
  out[b + 6], out[b + 7], out[b + 8], out[b + 9] = d.o or '', d.x or '', d.a or '', t0
end

-- Read up to n entries, drop what cannot be a job, then judge them with one
-- HMGET of their leases.
local function read(si, id, n)
  if n <= 0 then return 0 end
  local res = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', n,
    'STREAMS', streams[si], id)
  if not res then return 0 end
  local stream, entries = streams[si], res[1][2]
  local jobs, ids = {}, {}
  for _, e in ipairs(entries) do
    local entry, f = e[1], e[2]
    if not f or type(f) ~= 'table' or #f == 0 then
      redis.call('XACK', stream, group, entry)  -- deleted meanwhile
    else
      local d = decoded(f)
      if not d.i or not d.t or not d.m or seen[d.i] then
        -- malformed, or a second entry of one message: never sent twice
        redis.call('XACK', stream, group, entry)
        redis.call('XDEL', stream, entry)
      else
        seen[d.i] = true
        table.insert(jobs, {entry, d})
        table.insert(ids, d.i)
      end
    end
  end
  if #ids > 0 then
    local held = redis.call('HMGET', KEYS[6], unpack(ids))
    for k, job in ipairs(jobs) do consider(si, job[1], job[2], held[k]) end
  end
  return #entries
end

-- New entries: one first, so an invitation (a call of its own) is all we take
-- and the rest stays free for other workers; then the rest of a batch.
local function read_new(si)
  if single or count >= room then return end
  if read(si, '>', 1) == 0 then return end
  if not single then read(si, '>', room - count) end
end

local claim, claimed = tonumber(ARGV[12]), 0
if claim > 0 then
  for si = 1, 2 do
    local res = redis.call('XAUTOCLAIM', streams[si], group, consumer, claim, '0-0',
      'COUNT', want, 'JUSTID')
    claimed = claimed + #res[2]
    for _, gone in ipairs(res[3] or {}) do redis.call('XACK', streams[si], group, gone) end
  end
end

-- What we already hold (left from a split, a release, a takeover), high first,
-- then new entries; new ones only while the call has room.
read(1, '0', want)
read_new(1)
read(2, '0', want)
if room > count and not single then
  if ARGV[13] == '1' and njobs == 0 then
    local undelivered = redis.call('XLEN', KEYS[5]) - redis.call('XPENDING', KEYS[5], group)[1]
    if undelivered > 0 and undelivered < room then return {'wait', tostring(now), '0', '0', refused} end
  end
  read_new(2)
end
if count > 0 then
  redis.call('INCRBY', qk, count)
  redis.call('EXPIREAT', qk, exp)
end
if #leases > 0 then
  -- As a listpack (up to hash-max-listpack-entries, 512), the lease hash costs a scan
  -- of it for every id a script looks up, sets or frees; a value longer than
  -- hash-max-listpack-value (64) turns it into a hash table for good (while it exists).
  redis.call('HSET', KEYS[6], '', WIDE)
  redis.call('HSET', KEYS[6], unpack(leases))
  redis.call('HDEL', KEYS[6], '')
end
local status = 'ok'
if njobs == 0 then
  if room == 0 then status = 'closed' else status = 'empty' end
end
out[1], out[2], out[3], out[4] = status, tostring(now), tostring(count), tostring(claimed)
return out
