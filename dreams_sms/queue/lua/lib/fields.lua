-- Prelude: a job's stream entry, the one Lua home of its encoding (Python's is
-- queue/jobs.py, Job.fields and Job.from_fields). Fields: i id, t number, m text,
-- o options JSON, x expires at, a first enqueued at; the last three only when set.

-- Stream fields (a flat list for XADD) from a decoded job `d` (a packed job, see Job.pack).
local function fields(d)
  local f = {'i', d.i, 't', d.t, 'm', d.m}
  if d.o then table.insert(f, 'o'); table.insert(f, d.o) end
  if d.x then table.insert(f, 'x'); table.insert(f, d.x) end
  if d.a then table.insert(f, 'a'); table.insert(f, d.a) end
  return f
end

-- A job (field -> value) from the flat list an XRANGE or XREADGROUP entry carries.
local function decoded(f)
  local d = {}
  for k = 1, #f, 2 do d[f[k]] = f[k + 1] end
  return d
end
