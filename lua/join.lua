-- join.lua: give a visitor a place in a sale's queue (or lottery entries).
--
-- KEYS[1]  meta   hash   the sale's waiting-room state (see src/waiting_room/mod.rs)
-- KEYS[2]  seen   string u32 per join number: last poll, unix seconds
--                        (0 = never joined, 1 = abandoned)
-- KEYS[3]  users  hash   signed-in user id -> join number, and '#<n>' -> user
-- ARGV[1]  now, unix seconds
-- ARGV[2]  signed-in user id, or "" for an anonymous visitor
--
-- Returns {code, n, state, serving, position, rate, drawn}
--   code      1 = new place, 0 = this user already had place n,
--            -1 = the sale is not known to Redis yet (caller syncs and retries),
--            -2 = the sale no longer takes joins (state says why)
--   n         the visitor's join number
--   serving, position, rate, drawn: for a new place (code 1), the standing
--             as status.lua would report it, so a join is one round trip
--             and no second call can fail after the number is taken;
--             position is -1 while the pre-queue is open (its order is drawn
--             when it freezes). For other codes: 0, -1, '', ''.
local m = redis.call('HMGET', KEYS[1], 'state', 'mode', 'drawn', 'serving', 'pq', 'rate')
local state = m[1]
if not state then
  return {-1, 0, '', 0, -1, '', ''}
end
if state == 'closed' or state == 'sold_out' then
  return {-2, 0, state, 0, -1, '', ''}
end
if m[3] and m[2] == 'lottery' then
  return {-2, 0, 'drawn', 0, -1, '', ''}
end
local user = ARGV[2]
if user ~= '' then
  local existing = redis.call('HGET', KEYS[3], user)
  if existing then
    return {0, tonumber(existing), state, 0, -1, '', ''}
  end
end
local n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('BITFIELD', KEYS[2], 'SET', 'u32', '#' .. n, ARGV[1])
if user ~= '' then
  -- '#<n>' maps back to the user, so admission events can name them.
  redis.call('HSET', KEYS[3], user, n, '#' .. n, user)
end
-- A new number is above a frozen pre-queue, so it queues FIFO at n.
local position = n
if not m[5] then
  position = -1
end
return {1, n, state, tonumber(m[4]) or 0, position, m[6] or '', m[3] or ''}
