"""Message state on Redis: every outcome write, each one atomic and owned.

An outcome (sent, failed, expired, cancelled, held, requeued, deferred) is one
Lua step that checks the job is still ours (its lease carries our token, or it
is free and its entry pending with us), then writes the state, moves the
campaign counters, acknowledges and deletes the stream entry and frees the
lease together. A worker that lost a job to another can therefore never
record, requeue or resend it: its write is refused and it moves on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis

from dreams_sms.queue.jobs import CANCELLED, EXPIRED, FAILED, SENT, UNKNOWN, Job
from dreams_sms.queue.keys import GROUP, Keys

log = logging.getLogger("dreams_sms.queue.store")

_COUNTER = {SENT: "sent", FAILED: "failed", EXPIRED: "expired", UNKNOWN: "unknown",
            CANCELLED: "cancelled"}

# Stream fields from a packed job (the delayed set's and the held hash's form).
_FIELDS = """
local function fields(d)
  local f = {'i', d.i, 't', d.t, 'm', d.m}
  if d.o then table.insert(f, 'o'); table.insert(f, d.o) end
  if d.x then table.insert(f, 'x'); table.insert(f, d.x) end
  if d.a then table.insert(f, 'a'); table.insert(f, d.a) end
  return f
end
"""

# KEYS: 1 lease hash, 2 high stream, 3 normal stream, 4 held, 5 delayed, 6 senders,
#       then (status hash, campaign hash) per campaign.
# ARGV: 1 group, 2 consumer, 3 token, 4 mode (final|requeue|defer), 5 state value,
#       6 counter, 7 failure counter or '', 8 ttl, 9 due (defer), then per job
#       (id, high, entry, campaign index, seq, packed job).
# Returns the ids refused (not ours any more).
_SETTLE = _FIELDS + """
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
      if ARGV[5] == 'U' then redis.call('HSET', KEYS[4], id, packed) end
    elseif mode == 'defer' then
      table.insert(c.seqs, seq); table.insert(c.seqs, 'D:' .. ARGV[9])
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
-- A campaign's statuses and counters live as long as any of its messages waits,
-- then `ttl` more seconds.
for ci, c in pairs(per) do
  local st, camp = KEYS[5 + 2 * ci], KEYS[6 + 2 * ci]
  if mode == 'final' then
    redis.call('HSET', st, unpack(c.seqs))
    redis.call('HINCRBY', camp, ARGV[6], c.n)
    if ARGV[7] ~= '' then redis.call('HINCRBY', camp, ARGV[7], c.n) end
  elseif mode == 'defer' then
    redis.call('HSET', st, unpack(c.seqs))
    redis.call('HINCRBY', camp, 'deferred', c.n)
  else
    redis.call('HDEL', st, unpack(c.seqs))
  end
  local v = redis.call('HMGET', camp, 'total', 'sent', 'failed', 'expired', 'unknown',
    'cancelled')
  local done = 0
  for k = 2, 6 do done = done + tonumber(v[k] or '0') end
  if done >= tonumber(v[1] or '0') then
    redis.call('EXPIRE', st, ttl)
    redis.call('EXPIRE', camp, ttl)
  else
    redis.call('PERSIST', st)
    redis.call('PERSIST', camp)
  end
end
return refused
"""

# KEYS: 1 held, 2 senders, then (stream, status hash, campaign hash) per job.
# ARGV: 1 'delivered' or 'resend', then (id, seq, packed job) per job.
# Each id is settled by whoever removes it from the held hash: exactly once.
_SETTLE_HELD = _FIELDS + """
local n = 0
for k = 2, #ARGV, 3 do
  local j = (k - 2) / 3
  local stream, st, camp = KEYS[3 + 3 * j], KEYS[4 + 3 * j], KEYS[5 + 3 * j]
  if redis.call('HDEL', KEYS[1], ARGV[k]) == 1 then
    n = n + 1
    redis.call('HINCRBY', camp, 'unknown', -1)
    if ARGV[1] == 'delivered' then
      redis.call('HSET', st, ARGV[k + 1], 'S')
      redis.call('HINCRBY', camp, 'sent', 1)
    else
      local d = cjson.decode(ARGV[k + 2])
      redis.call('HDEL', st, ARGV[k + 1])
      redis.call('PERSIST', st)  -- waiting again: kept until it is settled
      redis.call('PERSIST', camp)
      redis.call('XADD', stream, '*', unpack(fields(d)))
      redis.call('SADD', KEYS[2], d.s)
    end
  end
end
return n
"""


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose writes these are: the consumer (its pending entries) and a lease token."""

    consumer: str
    token: str


class Store:
    def __init__(self, r: redis.Redis, keys: Keys, *, ttl: int = 7 * 86_400):
        self.r = r
        self.keys = keys
        self.ttl = ttl
        self._settle = r.register_script(_SETTLE)
        self._settle_held = r.register_script(_SETTLE_HELD)

    # -- outcome writes (owned) ------------------------------------------------------
    def finish(self, jobs: Sequence[Job], state: str, owner: Owner, *, code: str = ""
               ) -> list[str]:
        """Final outcome. Returns the ids refused because they are no longer ours."""
        counter = _COUNTER[state]
        failure = f"f:{code}" if state == FAILED and code else ""
        value = f"{state}:{code}" if code else state
        return self._write(jobs, owner, "final", value, counter, failure)

    def requeue(self, jobs: Sequence[Job], owner: Owner, *, now: float, delay: float = 0.0
                ) -> list[str]:
        """Give jobs back: to the stream's tail now, or to the delayed set for later."""
        if delay > 0:
            return self._write(jobs, owner, "defer", "", "", "", due=now + delay, now=now)
        return self._write(jobs, owner, "requeue", "", "", "", now=now)

    def _write(self, jobs: Sequence[Job], owner: Owner, mode: str, value: str, counter: str,
               failure: str, *, due: float = 0.0, now: float = 0.0) -> list[str]:
        refused: list[str] = []
        by_sender: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            by_sender[job.sender].append(job)
        for sender, group in by_sender.items():
            campaigns: dict[str, int] = {}
            keys = [self.keys.lease(sender), *self.keys.streams(sender), self.keys.held,
                    self.keys.delayed, self.keys.senders]
            args: list[object] = [GROUP, owner.consumer, owner.token, mode, value, counter,
                                  failure, self.ttl, f"{due:.3f}"]
            for job in group:
                cid = job.campaign
                if cid not in campaigns:
                    campaigns[cid] = len(campaigns) + 1
                    keys += [self.keys.status(cid), self.keys.campaign(cid)]
                if mode != "final" and job.first_at is None:
                    job.first_at = job.enqueued_at() or now
                whole = job.pack() if mode != "final" or value == UNKNOWN else ""
                args += [job.id, "1" if job.high else "0", job.entry, campaigns[cid], job.seq,
                         whole]
            refused += self._settle(keys=keys, args=args)
        if refused:
            log.warning("%d jobs were taken over by another worker; left to it", len(refused))
        return refused

    # -- held jobs (unknown outcome) -------------------------------------------------
    def held(self, limit: int = 1000) -> list[Job]:
        """Jobs whose outcome is unknown, waiting for an operator."""
        out = []
        for _, raw in zip(range(limit), self.r.hscan_iter(self.keys.held, count=500),
                          strict=False):
            out.append(Job.unpack(raw[1]))
        return out

    def settle_held(self, ids: Sequence[str], *, delivered: bool, now: float) -> int:
        """An operator's verdict on held jobs: mark them sent, or send them again.

        Each id is settled once, whoever else runs the same command at the same time.
        """
        raws = self.r.hmget(self.keys.held, list(ids)) if ids else []
        jobs = [Job.unpack(raw) for raw in raws if raw]
        if not jobs:
            return 0
        keys = [self.keys.held, self.keys.senders]
        args: list[object] = ["delivered" if delivered else "resend"]
        for job in jobs:
            job.first_at = job.first_at or now
            keys += [self.keys.stream(job.sender, job.high), self.keys.status(job.campaign),
                     self.keys.campaign(job.campaign)]
            args += [job.id, job.seq, job.pack()]
        return int(self._settle_held(keys=keys, args=args))

    def unknown_ids(self, ids: Iterable[str]) -> list[str]:
        """Those of `ids` that are not held."""
        ids = list(ids)
        if not ids:
            return []
        present = self.r.hmget(self.keys.held, ids)
        return [i for i, raw in zip(ids, present, strict=True) if raw is None]

