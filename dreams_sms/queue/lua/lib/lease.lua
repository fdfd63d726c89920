-- Prelude: the clock and the lease value (`token|until_ms|first attempt`) that
-- take, retake and renew share.

-- Redis' clock in seconds, plus the test clock's offset (KEY `clock`) when `use_clock` is '1'.
local function now_s(clock, use_clock)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  if use_clock == '1' then now = now + tonumber(redis.call('GET', clock) or '0') end
  return now
end

-- owner token, until (ms) and first attempt of a lease value, or nil when there is none.
local function parse_lease(raw)
  if not raw then return nil end
  local owner, untl, t0 = string.match(raw, '^([^|]*)|([^|]*)|(.*)$')
  return owner, tonumber(untl), t0
end

-- The consumer an entry is pending with, or nil.
local function pel_owner(stream, group, entry)
  local p = redis.call('XPENDING', stream, group, entry, entry, 1)
  if p[1] then return p[1][2] end
  return nil
end
