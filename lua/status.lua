-- status.lua: where a visitor stands, and a heartbeat proving they are still
-- there. The hot path of a sale: one call, O(1), no Postgres.
--
-- KEYS[1]  meta    hash    the sale's waiting-room state
-- KEYS[2]  seen    string  u32 per join number: last poll (1 = abandoned)
-- KEYS[3]  active  zset    join number -> admission deadline (unix ms)
-- KEYS[4]  pos     string  u32 per join number: position after the shuffle
--                          (pre-queue and lottery entries only)
-- KEYS[5]  rev     string  1 bit per join number: the admission was revealed
-- KEYS[6]  owed    zset    join number -> when an admission the visitor
--                          slept through was owed to them (unix ms)
-- ARGV[1]  join number n
-- ARGV[2]  now, unix milliseconds
--
-- Returns {state, serving, position, standing, deadline_ms, rate, drawn, seq}
--   state     the sale's state ('' if Redis does not know the sale)
--   position  place in admission order; -1 while not yet known (the
--             pre-queue until it is frozen at the start, or during the
--             shuffle)
--   standing  'waiting' | 'admitted' | 'expired' | 'abandoned'; 'admitted'
--             only while the admission deadline is still ahead (an entry
--             past it may linger in `active` until the next tick). In FIFO
--             mode the first answer that reveals an admission starts its
--             window (`attl` seconds from now): admit.lua only reserved the
--             slot for a short grace, so a visitor asleep between polls
--             neither loses window time nor blocks the line for long. A
--             visitor who slept through the whole grace (the line moved
--             faster than the poll interval they were given foresaw) has not
--             lost the place, unless gone by the abandonment rule: admitted
--             at once when a slot is free, else 'waiting' at the front and
--             owed the next slot (admit.lua serves `owed` first).
--   deadline  admission deadline in unix ms when admitted, else ''
--   rate      measured admissions per second as text, '' when unknown
--   drawn     lottery winners count as text, '' before a draw
local m = redis.call('HMGET', KEYS[1], 'state', 'serving', 'pq', 'shuf', 'rate', 'drawn', 'seq', 'mode', 'attl',
  'max', 'aband')
local state = m[1]
if not state then
  return {'', 0, -1, 'waiting', '', '', '', 0}
end
local n = tonumber(ARGV[1])
local now_ms = tonumber(ARGV[2])
local serving = tonumber(m[2]) or 0
local rate = m[5] or ''
local drawn = m[6] or ''
local seq = tonumber(m[7]) or 0
local seen = redis.call('BITFIELD', KEYS[2], 'GET', 'u32', '#' .. n)[1]
if seen == 1 then
  return {state, serving, -1, 'abandoned', '', rate, drawn, seq}
end

local position = n
local pq = tonumber(m[3])
if pq == nil then
  -- Not frozen yet: everyone so far is in the pre-queue, whose order is
  -- drawn (or kept) when the sale clock freezes it at the start.
  position = -1
elseif n <= pq then
  if m[4] == '1' then
    position = redis.call('BITFIELD', KEYS[4], 'GET', 'u32', '#' .. n)[1]
  else
    position = -1
  end
end

if position > 0 and position <= serving then
  local deadline = redis.call('ZSCORE', KEYS[3], n)
  if deadline and tonumber(deadline) > now_ms then
    if m[8] == 'fifo' and redis.call('SETBIT', KEYS[5], n, 1) == 0 then
      deadline = now_ms + (tonumber(m[9]) or 300) * 1000
      redis.call('ZADD', KEYS[3], 'XX', 'GT', deadline, n)
      deadline = redis.call('ZSCORE', KEYS[3], n)
    end
    return {state, serving, position, 'admitted', deadline, rate, drawn, seq}
  end
  local now_s = math.floor(now_ms / 1000)
  if m[8] == 'fifo' and (state == 'on_sale' or state == 'paused') and redis.call('GETBIT', KEYS[5], n) == 0
      and seen >= now_s - (tonumber(m[11]) or 60) then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_ms)
    -- A free slot goes to them now only if nobody was owed one before them.
    local first = redis.call('ZRANGE', KEYS[6], 0, 0)[1]
    if state == 'on_sale' and (first == nil or tonumber(first) == n)
        and redis.call('ZCARD', KEYS[3]) < (tonumber(m[10]) or 0) then
      local window_end = now_ms + (tonumber(m[9]) or 300) * 1000
      redis.call('ZADD', KEYS[3], window_end, n)
      redis.call('SETBIT', KEYS[5], n, 1)
      redis.call('ZREM', KEYS[6], n)
      return {state, serving, position, 'admitted', window_end, rate, drawn, seq}
    end
    redis.call('ZADD', KEYS[6], 'NX', now_ms, n)
    redis.call('BITFIELD', KEYS[2], 'SET', 'u32', '#' .. n, now_s)
    return {state, serving, position, 'waiting', '', rate, drawn, seq}
  end
  return {state, serving, position, 'expired', '', rate, drawn, seq}
end
redis.call('BITFIELD', KEYS[2], 'SET', 'u32', '#' .. n, math.floor(now_ms / 1000))
return {state, serving, position, 'waiting', '', rate, drawn, seq}
