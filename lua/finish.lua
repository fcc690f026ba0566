-- finish.lua: an admitted visitor is done (ordered, released, cancelled) or
-- holds units for a while; frees or extends their admission slot.
--
-- KEYS[1]  active  zset  join number -> admission deadline (unix ms)
-- ARGV[1]  join number
-- ARGV[2]  new deadline in unix ms to keep the slot until (only ever moved
--          later), or "0" to free the slot now
--
-- Returns 1 if the visitor had a slot, else 0.
if ARGV[2] == '0' then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return redis.call('ZADD', KEYS[1], 'XX', 'GT', 'CH', ARGV[2], ARGV[1])
