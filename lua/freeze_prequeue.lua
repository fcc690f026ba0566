-- freeze_prequeue.lua: close a sale's pre-queue (or lottery entries) at the
-- start, fixing how many join numbers the shuffle covers. Later joiners get
-- numbers above it and queue FIFO behind.
--
-- KEYS[1]  meta  hash  the sale's waiting-room state
-- ARGV[1]  "1" to shuffle the pre-queue, "0" to keep join order
--
-- Returns {pq, shuffled}: the pre-queue size (0 = nothing to shuffle) and
-- whether its order is already in place.
local existing = redis.call('HMGET', KEYS[1], 'pq', 'shuf')
if existing[1] then
  return {tonumber(existing[1]), existing[2] == '1' and 1 or 0}
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq')) or 0
if ARGV[1] == '1' and seq > 1 then
  redis.call('HSET', KEYS[1], 'pq', seq, 'shuf', 0)
  return {seq, 0}
end
redis.call('HSET', KEYS[1], 'pq', 0, 'shuf', 1)
return {0, 1}
