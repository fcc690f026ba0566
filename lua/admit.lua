-- admit.lua: advance a sale's serving number. Called every tick by every
-- server instance (and by the admin "admit N"); the budget and the clock live
-- in Redis, so any number of callers share one admission rate, never double.
--
-- KEYS[1]  meta    hash    the sale's waiting-room state
-- KEYS[2]  seen    string  u32 per join number: last poll (1 = abandoned)
-- KEYS[3]  active  zset    join number -> admission deadline (unix ms)
-- KEYS[4]  at      string  u32 per position: join number (pre-queue/lottery)
-- KEYS[5]  users   hash    '#<n>' -> signed-in user id
-- KEYS[6]  adm     zset    admissions whose queue.admitted event is not yet
--                          in the outbox: join number -> "n|deadline|user"
--                          (removed once written; see WaitingRoom::pending_admissions)
-- KEYS[7]  owed    zset    join number -> when: admissions their visitors
--                          slept through, owed again (status.lua); served
--                          before the serving number advances
-- ARGV[1]  now, unix milliseconds
-- ARGV[2]  manual count: admit exactly this many now, ignoring the rate,
--          max_active and the sale's state; -1 for a regular tick. Nobody is
--          admitted, by hand or by tick, until the pre-queue is frozen and
--          its order written (`pq` set, `shuf` = 1): admitting by join number
--          before the shuffle would hand slots to the wrong visitors.
-- ARGV[3]  most queue numbers to look at in this call (bounds the script's
--          run time when many visitors abandoned)
-- ARGV[4]  grace in ms an unrevealed FIFO admission keeps its slot
--
-- Returns {admitted, abandoned, serving, seq, active, ready}
--   ready     0 when a manual admission found the pre-queue's order not yet
--             written (nobody admitted; ask again shortly), -1 when Redis
--             does not know the sale (never copied, or its data was lost:
--             the sale clock copies it again), else 1
-- The admitted visitors go to `adm` for their queue.admitted events.
local m = redis.call('HMGET', KEYS[1], 'state', 'wr', 'aps', 'max', 'attl', 'aband',
  'pq', 'shuf', 'seq', 'serving', 'budget', 'tick', 'win_t', 'win_n', 'rate', 'hold_until',
  'rst_t', 'rst_n', 'mode', 'amode', 'arate')
if not m[1] then
  return {0, 0, 0, 0, 0, -1}
end
local now = tonumber(ARGV[1])
local manual = tonumber(ARGV[2])
local max_steps = tonumber(ARGV[3])
local reveal_grace_ms = tonumber(ARGV[4])
local seq = tonumber(m[9]) or 0
local serving = tonumber(m[10]) or 0
local pq = tonumber(m[7])

redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local active = redis.call('ZCARD', KEYS[3])

local ordered = pq ~= nil and (pq == 0 or m[8] == '1')
local last_tick = tonumber(m[12]) or now
local budget = tonumber(m[11]) or 0
local quota
if manual >= 0 then
  if not ordered then
    return {0, 0, serving, seq, active, 0}
  end
  quota = manual
else
  local ready = m[1] == 'on_sale' and m[2] == '1' and ordered
  local hold_until = tonumber(m[16])
  if hold_until and now < hold_until then
    ready = false
  end
  if not ready then
    redis.call('HSET', KEYS[1], 'tick', now, 'budget', 0)
    return {0, 0, serving, seq, active, 1}
  end
  local aps = tonumber(m[3]) or 0
  if m[20] == 'adaptive' then
    -- The controller's rate (adapt.lua), starting from the configured one.
    aps = tonumber(m[21]) or aps
  end
  local dt = math.min(math.max(now - last_tick, 0), 1000)
  -- At most one second of inflow can be banked, so a quiet spell does not
  -- turn into a burst on Postgres.
  budget = math.min(budget + aps * dt / 1000, math.max(aps, 1))
  local slots = (tonumber(m[4]) or 0) - active
  quota = math.min(math.floor(budget), slots)
end

local now_s = math.floor(now / 1000)
local abandon_before = now_s - (tonumber(m[6]) or 60)
local ttl_ms = (tonumber(m[5]) or 300) * 1000
-- FIFO admissions reserve the slot for a short grace only; the visitor's
-- next status answer reveals the admission and starts the full window
-- (status.lua). Someone asleep past the grace frees the slot for the next
-- in line instead of holding it for the whole window.
local slot_ms = ttl_ms
if m[19] == 'fifo' then
  slot_ms = math.min(ttl_ms, reveal_grace_ms)
end
-- After Redis lost its data (see sync_sale.lua), numbers up to rst_n have
-- no "last seen" any more; they count as seen at the restore, so waiting
-- visitors keep their places for one abandonment window.
local restored_at = tonumber(m[17]) or 0
local restored_upto = tonumber(m[18]) or 0
local admitted, abandoned, steps = 0, 0, 0
-- Visitors who slept through their admission come first, oldest first,
-- each with the grace again (their queue.admitted event went out the first
-- time); one gone since (abandoned, removed) is dropped.
if quota > 0 then
  for _, owed in ipairs(redis.call('ZRANGE', KEYS[7], 0, quota - 1)) do
    redis.call('ZREM', KEYS[7], owed)
    local n = tonumber(owed)
    local seen = redis.call('BITFIELD', KEYS[2], 'GET', 'u32', '#' .. n)[1]
    if seen ~= 1 and seen >= abandon_before then
      redis.call('ZADD', KEYS[3], now + slot_ms, n)
      admitted = admitted + 1
    end
  end
end
while admitted < quota and serving < seq and steps < max_steps do
  local p = serving + 1
  local n = p
  if pq and p <= pq and pq > 0 then
    n = redis.call('BITFIELD', KEYS[4], 'GET', 'u32', '#' .. p)[1]
  end
  local seen = redis.call('BITFIELD', KEYS[2], 'GET', 'u32', '#' .. n)[1]
  if seen == 0 and n <= restored_upto then
    seen = restored_at
  end
  if seen == 1 then
    -- already given up
  elseif seen < abandon_before then
    redis.call('BITFIELD', KEYS[2], 'SET', 'u32', '#' .. n, 1)
    abandoned = abandoned + 1
  else
    redis.call('ZADD', KEYS[3], now + slot_ms, n)
    admitted = admitted + 1
    local user = redis.call('HGET', KEYS[5], '#' .. n) or ''
    redis.call('ZADD', KEYS[6], n, n .. '|' .. (now + slot_ms) .. '|' .. user)
  end
  serving = p
  steps = steps + 1
end

if manual < 0 then
  budget = budget - admitted
end
-- Measured admission rate over windows of at least five seconds; feeds
-- the estimated wait.
local win_t = tonumber(m[13]) or now
local win_n = (tonumber(m[14]) or 0) + admitted
local rate = m[15] or ''
if now - win_t >= 5000 then
  local r = win_n * 1000 / (now - win_t)
  if rate == '' or r == 0 then
    rate = tostring(r)
  else
    rate = tostring(0.5 * tonumber(rate) + 0.5 * r)
  end
  win_t = now
  win_n = 0
end
redis.call('HSET', KEYS[1], 'serving', serving, 'budget', tostring(budget), 'tick', now,
  'win_t', win_t, 'win_n', win_n, 'rate', rate)
if admitted > 0 then
  redis.call('HINCRBY', KEYS[1], 'admitted', admitted)
end
if abandoned > 0 then
  redis.call('HINCRBY', KEYS[1], 'abandoned', abandoned)
end
return {admitted, abandoned, serving, seq, active + admitted, 1}
