-- join.lua: give a visitor a place in a sale's queue (or lottery entries).
--
-- KEYS[1]  meta   hash   the sale's waiting-room state (see waiting_room.rs)
-- KEYS[2]  seen   string u32 per join number: last poll, unix seconds
--                        (0 = never joined, 1 = abandoned)
-- KEYS[3]  users  hash   signed-in user id -> join number
-- ARGV[1]  now, unix seconds
-- ARGV[2]  signed-in user id, or "" for an anonymous visitor
--
-- Returns {code, n, state}
--   code  1 = new place, 0 = this user already had place n,
--        -1 = the sale is not known to Redis yet (caller syncs and retries),
--        -2 = the sale no longer takes joins (state says why)
--   n     the visitor's join number
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {-1, 0, ''}
end
if state == 'closed' or state == 'sold_out' then
  return {-2, 0, state}
end
if redis.call('HGET', KEYS[1], 'drawn') and redis.call('HGET', KEYS[1], 'mode') == 'lottery' then
  return {-2, 0, 'drawn'}
end
local user = ARGV[2]
if user ~= '' then
  local existing = redis.call('HGET', KEYS[3], user)
  if existing then
    return {0, tonumber(existing), state}
  end
end
local n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('BITFIELD', KEYS[2], 'SET', 'u32', '#' .. n, ARGV[1])
if user ~= '' then
  redis.call('HSET', KEYS[3], user, n)
end
return {1, n, state}
