-- draw.lua: admit a lottery's winners. The entries' order is already drawn
-- and written by the shuffle (`at`: place -> join number); the first
-- `winners` places are admitted until the end of the purchase window, and
-- the regular ticker admits the waitlist only after that window.
--
-- KEYS[1]  meta    hash    the sale's waiting-room state
-- KEYS[2]  active  zset    join number -> admission deadline (unix ms)
-- KEYS[3]  at      string  u32 per place: join number
-- ARGV[1]  winners to admit
-- ARGV[2]  end of the purchase window, unix ms (the winners' deadline)
--
-- Returns {fresh, winners, entries, window_end}: fresh 1 when this call
-- drew, 0 when the lottery was drawn already (then winners and window_end
-- are that earlier draw's, so a draw whose Postgres record failed can be
-- recorded later from what Redis holds).
local m = redis.call('HMGET', KEYS[1], 'drawn', 'pq', 'seq', 'hold_until')
local entries = tonumber(m[3]) or 0
if m[1] then
  return {0, tonumber(m[1]), entries, tonumber(m[4]) or 0}
end
local pq = tonumber(m[2]) or 0
local winners = math.min(tonumber(ARGV[1]), entries)
for p = 1, winners do
  local n = p
  if pq > 0 and p <= pq then
    n = redis.call('BITFIELD', KEYS[3], 'GET', 'u32', '#' .. p)[1]
  end
  redis.call('ZADD', KEYS[2], ARGV[2], n)
end
redis.call('HSET', KEYS[1], 'drawn', winners, 'hold_until', ARGV[2], 'serving', winners)
redis.call('HINCRBY', KEYS[1], 'admitted', winners)
return {1, winners, entries, tonumber(ARGV[2])}
