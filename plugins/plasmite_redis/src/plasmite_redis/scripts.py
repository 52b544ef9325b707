"""The Lua scripts that keep a pool's invariants inside Redis.

A pool is two keys in one Cluster hash slot: ``plasmite:{POOL}:meta`` (a hash:
last seq, last time, capacity, bytes retained) and ``plasmite:{POOL}:log``
(a stream whose entry IDs are ``<seq>-0``). Appends run as one script so a
seq, its time and the entry are assigned together, by whichever writer gets
there first, with nothing in between; trimming to the capacity happens in the
same script. Times are 19-digit strings of ns since the epoch (Lua numbers
are doubles, too narrow for ns), compared as (seconds, fraction).
"""

from __future__ import annotations

# Bytes counted per message on top of its payload and tags: roughly what a
# stream entry costs Redis, so that "size" tracks memory, not just payloads.
ENTRY_OVERHEAD = 48

_TIME = r"""
local function split_t(t)
  return tonumber(string.sub(t, 1, -10)), tonumber(string.sub(t, -9))
end
"""

CREATE = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('EXISTS pool exists')
end
redis.call('HSET', KEYS[1], 'seq', 0, 'last_t', '0000000000000000000', 'cap_bytes', ARGV[1],
           'cap_msgs', ARGV[2], 'used', 0, 'codec', 'json', 'layout', 1)
return 1
"""

APPEND = _TIME + r"""
local meta, log = KEYS[1], KEYS[2]
local m = redis.call('HMGET', meta, 'seq', 'last_t', 'cap_bytes', 'cap_msgs', 'used')
if not m[1] then return redis.error_reply('NOPOOL pool does not exist') end
local seq, capb, capm, used = tonumber(m[1]), tonumber(m[3]), tonumber(m[4]), tonumber(m[5])
local lsec, lfrac = split_t(m[2])
local over = tonumber(ARGV[1])
local n = (#ARGV - 1) / 2
for i = 1, n do
  if #ARGV[2 * i] + #ARGV[2 * i + 1] + over > capb then
    return redis.error_reply('TOOBIG message larger than the pool')
  end
end
local now = redis.call('TIME')
local sec, frac = tonumber(now[1]), tonumber(now[2]) * 1000
local out = {seq + 1}
for i = 1, n do
  local tags, data = ARGV[2 * i], ARGV[2 * i + 1]
  if sec < lsec or (sec == lsec and frac <= lfrac) then
    sec, frac = lsec, lfrac + 1
    if frac >= 1000000000 then sec, frac = sec + 1, 0 end
  end
  lsec, lfrac = sec, frac
  seq = seq + 1
  local t = string.format('%d%09d', sec, frac)
  if #tags > 0 then
    redis.call('XADD', log, seq .. '-0', 't', t, 'd', data, 'g', tags)
  else
    redis.call('XADD', log, seq .. '-0', 't', t, 'd', data)
  end
  used = used + #tags + #data + over
  out[i + 1] = t
end
local count = 0
if capm > 0 then count = redis.call('XLEN', log) end
if used > capb or (capm > 0 and count > capm) then
  local start, cut = '-', nil
  while used > capb or (capm > 0 and count > capm) do
    local batch = redis.call('XRANGE', log, start, '+', 'COUNT', 64)
    if #batch == 0 then break end
    for _, e in ipairs(batch) do
      if not (used > capb or (capm > 0 and count > capm)) then break end
      local f, size = e[2], over
      for j = 1, #f, 2 do
        if f[j] == 'd' or f[j] == 'g' then size = size + #f[j + 1] end
      end
      used, count, cut = used - size, count - 1, e[1]
    end
    start = '(' .. cut
  end
  if cut then
    redis.call('XTRIM', log, 'MINID', (tonumber(string.match(cut, '^(%d+)')) + 1) .. '-0')
  end
end
redis.call('HSET', meta, 'seq', seq, 'last_t', out[n + 1] or m[2], 'used', used)
return out
"""

STATE = r"""
local m = redis.call('HMGET', KEYS[1], 'seq', 'last_t', 'cap_bytes', 'cap_msgs', 'used', 'codec')
if not m[1] then return redis.error_reply('NOPOOL pool does not exist') end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local oldest, oldest_t = '0', ''
if #first > 0 then
  oldest = string.match(first[1][1], '^(%d+)')
  local f = first[1][2]
  for j = 1, #f, 2 do if f[j] == 't' then oldest_t = f[j + 1] end end
end
return {m[1], m[2], m[3], m[4], m[5], m[6], redis.call('XLEN', KEYS[2]), oldest, oldest_t}
"""

# The first retained seq whose time is >= ARGV[1] (a 19-digit string), by
# binary search over the contiguous seqs; newest + 1 when there is none.
SEQ_AT_TIME = r"""
local m = redis.call('HGET', KEYS[1], 'seq')
if not m then return redis.error_reply('NOPOOL pool does not exist') end
local hi = tonumber(m) + 1
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #first == 0 then return hi end
local lo = tonumber(string.match(first[1][1], '^(%d+)'))
local want = ARGV[1]
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  local e = redis.call('XRANGE', KEYS[2], mid .. '-0', mid .. '-0')
  local t = nil
  if #e > 0 then
    local f = e[1][2]
    for j = 1, #f, 2 do if f[j] == 't' then t = f[j + 1] end end
  end
  if t == nil or t < want then lo = mid + 1 else hi = mid end
end
return lo
"""
