"""Who may send a job right now: one lease per message, taken by compare-and-set.

A job is sent only by the holder of its lease, and a lease is granted in one
Lua step, only when the job is free (or already this holder's). The lease
lives in a per-sender hash `<prefix>:lease:{sender}` (message id ->
`token|until_ms|t0`), in the same hash slot as the sender's streams, and is
removed by the very step that records the job's outcome.

What a lease means:

- held and renewed: a live worker is calling the provider with it (or about
  to); nobody else touches the job;
- held but expired: its holder went silent mid-call, so the provider may have
  accepted the job. A taker never resends such a job: it is reconciled or
  held for an operator ("unknown");
- absent: nobody is sending the job. A certain refusal (-114, -118, 5xx, a
  connect failure) releases the lease before the backoff sleep, so a crash
  then means a safe resend, not an operator's review.

One `take` does in a single round trip what a pass needs before its call:
pause check, the clock, the daily quota, taking over a dead consumer's
entries, reading (high priority first), and leasing at most one provider
call's worth of jobs.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import redis

from dreams_sms.queue.jobs import Job
from dreams_sms.queue.keys import GROUP, Keys, ensure_group

# Verdicts a take gives each job it returns (every one of them leased to the taker).
SEND = "send"  # fresh: goes out in this call
UNKNOWN = "unknown"  # a silent holder's lease ran out: may have reached the provider
EXPIRED = "expired"  # past expires_at: never sent
CANCEL = "cancel"  # its campaign was cancelled: never sent

_HELPERS = """
local function now_s(clock, use_clock)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  if use_clock == '1' then now = now + tonumber(redis.call('GET', clock) or '0') end
  return now
end
local function parse_lease(raw)
  if not raw then return nil end
  local owner, untl, t0 = string.match(raw, '^([^|]*)|([^|]*)|(.*)$')
  return owner, tonumber(untl), t0
end
local function pel_owner(stream, group, entry)
  local p = redis.call('XPENDING', stream, group, entry, entry, 1)
  if p[1] then return p[1][2] end
  return nil
end
"""

# KEYS: 1 pause reasons (hash), 2 sender pause, 3 clock, 4 high stream, 5 normal stream,
#       6 lease hash, 7 quota day A, 8 closed day A, 9 quota day B, 10 closed day B,
#       11 operator limits, 12 configured limits, 13 cancelled campaigns (id -> last seq cancelled)
# ARGV: 1 group, 2 consumer, 3 token, 4 want, 5 lease ms, 6 midnight A|B,
#       7 start of day A, 8 end of day B, 9 expire-at A, 10 expire-at B, 11 sender,
#       12 claim min-idle ms (0: no takeover), 13 fill (wait for a fuller batch),
#       14 object format (no number twice in a call), 15 test clock
# Returns {status, now, granted, claimed, item...}; item = {verdict, high, entry, i, t, m, o,
# x, a, t0}; for 'paused', the reasons instead of items.
_TAKE = _HELPERS + """
local now = now_s(KEYS[3], ARGV[15])
local reasons = redis.call('HKEYS', KEYS[1])
if #reasons > 0 then return {'paused', tostring(now), '0', '0', table.concat(reasons, ',')} end
local paused = redis.call('GET', KEYS[2])
if paused then return {'paused', tostring(now), '0', '0', paused} end
if now < tonumber(ARGV[7]) or now >= tonumber(ARGV[8]) then
  return {'clock', tostring(now), '0', '0'}
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
local items, seen, numbers, leases = {}, {}, {}, {}
local count, single = 0, false
local objfmt = ARGV[14] == '1'
local any_cancelled = redis.call('HLEN', KEYS[13]) > 0
local cuts = {}

local now_s = tostring(now)
local fresh = token .. '|' .. lease_until .. '|' .. now_s
local hi_s = {'1', '0'}

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
        if objfmt and numbers[d.t] then return end
        numbers[d.t] = true
      end
      count = count + 1
      verdict = 'send'
    end
  end
  leases[#leases + 1] = d.i
  leases[#leases + 1] = value
  items[#items + 1] = {verdict, hi_s[si], entry, d.i, d.t, d.m, d.o or '', d.x or '',
    d.a or '', t0}
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
      local d = {}
      for k = 1, #f, 2 do d[f[k]] = f[k + 1] end
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
  if ARGV[13] == '1' and #items == 0 then
    local undelivered = redis.call('XLEN', KEYS[5]) - redis.call('XPENDING', KEYS[5], group)[1]
    if undelivered > 0 and undelivered < room then return {'wait', tostring(now), '0', '0'} end
  end
  read_new(2)
end
if count > 0 then
  redis.call('INCRBY', qk, count)
  redis.call('EXPIREAT', qk, exp)
end
if #leases > 0 then redis.call('HSET', KEYS[6], unpack(leases)) end
local status = 'ok'
if #items == 0 then
  if room == 0 then status = 'closed' else status = 'empty' end
end
local out = {status, tostring(now), tostring(count), tostring(claimed)}
for _, it in ipairs(items) do table.insert(out, it) end
return out
"""

# KEYS: 1 lease hash, 2 high stream, 3 normal stream, 4 clock
# ARGV: 1 group, 2 consumer, 3 token, 4 lease ms, 5 test clock, then (id, high, entry)...
# A job is (re)granted when its lease is ours, or free while its entry is still
# pending with us. Returns {now, granted id...}.
_RETAKE = _HELPERS + """
local now = now_s(KEYS[4], ARGV[5])
local untl = string.format('%d', now * 1000 + tonumber(ARGV[4]))
local out = {tostring(now)}
for k = 6, #ARGV, 3 do
  local id, stream, entry = ARGV[k], KEYS[3 - tonumber(ARGV[k + 1])], ARGV[k + 2]
  local owner, _, t0 = parse_lease(redis.call('HGET', KEYS[1], id))
  local ok = owner == ARGV[3]
  if not owner and pel_owner(stream, ARGV[1], entry) == ARGV[2] then
    ok = true
    t0 = tostring(now)
  end
  if ok then
    redis.call('HSET', KEYS[1], id, ARGV[3] .. '|' .. untl .. '|' .. t0)
    redis.call('XCLAIM', stream, ARGV[1], ARGV[2], 0, entry, 'JUSTID')
    table.insert(out, id)
  end
end
return out
"""

# KEYS: 1 lease hash, 2 high stream, 3 normal stream, 4 clock
# ARGV: 1 group, 2 consumer, 3 token, 4 lease ms, 5 test clock, then (id, high, entry)...
# Keeps our leases and entries fresh; never takes back what another consumer holds.
_RENEW = _HELPERS + """
local now = now_s(KEYS[4], ARGV[5])
local untl = string.format('%d', now * 1000 + tonumber(ARGV[4]))
local n = 0
for k = 6, #ARGV, 3 do
  local id, stream, entry = ARGV[k], KEYS[3 - tonumber(ARGV[k + 1])], ARGV[k + 2]
  local owner, _, t0 = parse_lease(redis.call('HGET', KEYS[1], id))
  if owner == ARGV[3] then
    redis.call('HSET', KEYS[1], id, owner .. '|' .. untl .. '|' .. t0)
    redis.call('XCLAIM', stream, ARGV[1], ARGV[2], 0, entry, 'JUSTID')
    n = n + 1
  elseif not owner and pel_owner(stream, ARGV[1], entry) == ARGV[2] then
    redis.call('XCLAIM', stream, ARGV[1], ARGV[2], 0, entry, 'JUSTID')
    n = n + 1
  end
end
return n
"""

# KEYS: 1 lease hash. ARGV: 1 token, then ids. Frees our leases (the entries stay ours).
_RELEASE = """
local n = 0
for k = 2, #ARGV do
  local raw = redis.call('HGET', KEYS[1], ARGV[k])
  if raw and string.sub(raw, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then
    redis.call('HDEL', KEYS[1], ARGV[k])
    n = n + 1
  end
end
return n
"""

# KEYS: 1 high stream, 2 normal stream, 3 lease hash. ARGV: 1 group, 2 consumer.
# Entries we still hold without a lease go back to their stream's tail, so any
# worker can take them at once instead of after the takeover timer.
_HAND_BACK = """
local n = 0
for si = 1, 2 do
  local pending = redis.call('XPENDING', KEYS[si], ARGV[1], '-', '+', 1000, ARGV[2])
  for _, p in ipairs(pending) do
    local entry = p[1]
    local rows = redis.call('XRANGE', KEYS[si], entry, entry)
    local keep = false
    if rows[1] then
      local f = rows[1][2]
      local id = nil
      for k = 1, #f, 2 do if f[k] == 'i' then id = f[k + 1] end end
      if id and redis.call('HEXISTS', KEYS[3], id) == 1 then keep = true
      elseif id then redis.call('XADD', KEYS[si], '*', unpack(f)) end
    end
    if not keep then
      redis.call('XACK', KEYS[si], ARGV[1], entry)
      redis.call('XDEL', KEYS[si], entry)
      n = n + 1
    end
  end
end
return n
"""


@dataclass(slots=True)
class Taken:
    """What one `take` got: a status, Redis' clock, and leased jobs by verdict."""

    status: str  # ok, empty, closed, paused, wait, clock
    now: float
    granted: int = 0  # quota units reserved for `send`
    claimed: int = 0  # entries taken over from silent consumers
    send: list[Job] = field(default_factory=list)
    unknown: list[tuple[Job, float]] = field(default_factory=list)
    expired: list[Job] = field(default_factory=list)
    cancel: list[Job] = field(default_factory=list)
    paused: str = ""


def _day_window(now: float, tz: ZoneInfo) -> tuple[float, float, float]:
    """(start of today, next midnight, midnight after that), local time."""
    day = datetime.fromtimestamp(now, tz).date()

    def midnight(d: object) -> float:
        return datetime.combine(d, dtime(0), tzinfo=tz).timestamp()  # type: ignore[arg-type]

    return midnight(day), midnight(day + timedelta(days=1)), midnight(day + timedelta(days=2))


class Leases:
    """The lease scripts for one consumer (a worker process)."""

    def __init__(self, r: redis.Redis, keys: Keys, consumer: str, *, tz: ZoneInfo,
                 lease_seconds: float, test_clock: bool = False):
        self.r = r
        self.keys = keys
        self.consumer = consumer
        self.tz = tz
        self.lease_ms = int(lease_seconds * 1000)
        self.test_clock = "1" if test_clock else "0"
        self._take = r.register_script(_TAKE)
        self._retake = r.register_script(_RETAKE)
        self._renew = r.register_script(_RENEW)
        self._release = r.register_script(_RELEASE)
        self._hand_back = r.register_script(_HAND_BACK)
        self._skew = 0.0  # Redis clock (plus test offset) minus ours
        self._groups: set[str] = set()

    @staticmethod
    def new_token() -> str:
        return secrets.token_hex(8)

    def lease_key(self, sender: str) -> str:
        return self.keys.lease(sender)

    def take(self, sender: str, want: int, token: str, *, claim_ms: int = 0, fill: bool = False,
             object_format: bool = False) -> Taken:
        for stream in self.keys.streams(sender):
            ensure_group(self.r, stream, self._groups)
        for _ in range(3):
            reply = self._call_take(sender, want, token, claim_ms, fill, object_format)
            if reply[0] != "clock":
                break
            self._skew = float(reply[1]) - time.time()
        return self._taken(sender, reply)

    def _call_take(self, sender: str, want: int, token: str, claim_ms: int, fill: bool,
                   object_format: bool) -> list:
        est = time.time() + self._skew
        start, midnight, end = _day_window(est, self.tz)
        k = self.keys
        quota_a, quota_b = k.quota(sender, start, self.tz), k.quota(sender, midnight, self.tz)
        closed_a, closed_b = k.closed(sender, start, self.tz), k.closed(sender, midnight, self.tz)
        keys = [k.pauses, k.sender_paused(sender), k.clock, *k.streams(sender),
                k.lease(sender), quota_a, closed_a, quota_b, closed_b, k.limits, k.limits_seed,
                k.cancelled]
        args = [GROUP, self.consumer, token, want, self.lease_ms, repr(midnight), repr(start),
                repr(end), int(midnight) + 3600, int(end) + 3600, sender, claim_ms,
                int(fill), int(object_format), self.test_clock]
        try:
            return self._take(keys=keys, args=args)
        except redis.ResponseError as exc:  # the group vanished (Redis lost its data)
            if "NOGROUP" not in str(exc):
                raise
            self._groups.clear()
            for stream in self.keys.streams(sender):
                ensure_group(self.r, stream, self._groups)
            return self._take(keys=keys, args=args)

    def _taken(self, sender: str, reply: list) -> Taken:
        status, now, granted, claimed = reply[0], float(reply[1]), int(reply[2]), int(reply[3])
        self._skew = now - time.time()
        out = Taken(status, now, granted, claimed)
        if status == "paused":
            out.paused = reply[4]
            return out
        for item in reply[4:]:
            verdict, high, entry, i, to, text, opts, exp, first, t0 = item
            fields = {"i": i, "t": to, "m": text}
            if opts:
                fields["o"] = opts
            if exp:
                fields["x"] = exp
            if first:
                fields["a"] = first
            job = Job.from_fields(fields, sender=sender, entry=entry, high=high == "1")
            if verdict == SEND:
                out.send.append(job)
            elif verdict == UNKNOWN:
                out.unknown.append((job, float(t0 or now)))
            elif verdict == EXPIRED:
                out.expired.append(job)
            else:
                out.cancel.append(job)
        return out

    def _job_args(self, jobs: Sequence[Job]) -> list[str]:
        args: list[str] = []
        for j in jobs:
            args += [j.id, "1" if j.high else "0", j.entry]
        return args

    def retake(self, sender: str, token: str, jobs: Sequence[Job]) -> tuple[list[Job], float]:
        """Lease `jobs` again right before a call: those still ours, and their clock."""
        if not jobs:
            return [], time.time() + self._skew
        reply = self._retake(keys=[self.keys.lease(sender), *self.keys.streams(sender),
                                   self.keys.clock],
                             args=[GROUP, self.consumer, token, self.lease_ms, self.test_clock,
                                   *self._job_args(jobs)])
        now = float(reply[0])
        self._skew = now - time.time()
        mine = set(reply[1:])
        return [j for j in jobs if j.id in mine], now

    def renew(self, sender: str, token: str, jobs: Sequence[Job]) -> int:
        if not jobs:
            return 0
        return int(self._renew(keys=[self.keys.lease(sender), *self.keys.streams(sender),
                                     self.keys.clock],
                               args=[GROUP, self.consumer, token, self.lease_ms,
                                     self.test_clock, *self._job_args(jobs)]))

    def release(self, sender: str, token: str, jobs: Sequence[Job]) -> int:
        """Free our leases after a certain refusal: the jobs were not sent."""
        if not jobs:
            return 0
        return int(self._release(keys=[self.keys.lease(sender)],
                                 args=[token, *[j.id for j in jobs]]))

    def hand_back(self, sender: str) -> int:
        """Unleased entries we still hold go back to their stream (a chain's end)."""
        return int(self._hand_back(keys=[*self.keys.streams(sender), self.keys.lease(sender)],
                                   args=[GROUP, self.consumer]))

    def now(self) -> float:
        """Our best estimate of Redis' clock (as of the last script reply)."""
        return time.time() + self._skew
