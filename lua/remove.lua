-- remove.lua: an admin takes places away (SPEC §4a). The visitors are
-- remembered by id in `removed`, so their next poll, join or hold is told
-- `removed`; a signed-in user's place is found through `users` and freed at
-- once: marked abandoned (the ticker skips it) and its admission slot, if
-- any, released. An anonymous visitor's place is freed the same way at
-- their next poll (their token names the number).
--
-- KEYS[1]  meta     hash    `rmv` counts removals, so instances know when
--                           to re-read `removed`
-- KEYS[2]  removed  set     visitor ids whose places were taken away
-- KEYS[3]  users    hash    signed-in user id -> join number
-- KEYS[4]  seen     string  u32 per join number; 1 = abandoned
-- KEYS[5]  active   zset    join number -> admission deadline
-- ARGV[1..] visitor ids (`u:<sub>` for signed-in users)
--
-- Returns {newly_removed, places_freed}.
local newly, freed = 0, 0
for i = 1, #ARGV do
  local visitor = ARGV[i]
  newly = newly + redis.call('SADD', KEYS[2], visitor)
  local n = redis.call('HGET', KEYS[3], visitor)
  if n then
    redis.call('BITFIELD', KEYS[4], 'SET', 'u32', '#' .. n, 1)
    redis.call('ZREM', KEYS[5], n)
    freed = freed + 1
  end
end
if newly > 0 then
  redis.call('HINCRBY', KEYS[1], 'rmv', 1)
end
return {newly, freed}
