-- sync_sale.lua: copy a sale's state and admission settings from Postgres
-- into the waiting room, and put back counters Redis has lost.
--
-- Settings carry the sale row's version (its updated_at); an older copy
-- never overwrites a newer one, so a clock tick that read the row just
-- before an admin change cannot undo that change.
--
-- Counters are only ever restored, never overwritten: after Redis lost its
-- data the join counter resumes `margin` above the last saved value (tokens
-- already carry numbers up to about there), the serving number where it was,
-- the frozen pre-queue size (so its shuffle is rewritten identically) and a
-- lottery's winner count.
--
-- KEYS[1]  meta  hash  the sale's waiting-room state
-- ARGV[1]  version of the settings (sale.updated_at, unix microseconds)
-- ARGV[2]  saved join counter
-- ARGV[3]  saved serving number
-- ARGV[4]  saved pre-queue size, -1 if not frozen
-- ARGV[5]  lottery winners drawn, '' before a draw
-- ARGV[6]  margin added to a restored join counter
-- ARGV[7]  now, unix seconds: a restore records it (rst_t) with the saved
--          counter (rst_n) so admit.lua treats those visitors as seen now
-- ARGV[8..] field, value pairs of settings (state, mode, wr, aps, ...)
--
-- Returns {settings_changed, restored}: 1/0 each (settings_changed: a newer
-- version than Redis had was written).
local written = 0
local current = tonumber(redis.call('HGET', KEYS[1], 'ver'))
if current == nil or current <= tonumber(ARGV[1]) then
  local pairs = {}
  for i = 8, #ARGV do
    pairs[#pairs + 1] = ARGV[i]
  end
  redis.call('HSET', KEYS[1], 'ver', ARGV[1], unpack(pairs))
  if current ~= tonumber(ARGV[1]) then
    written = 1
  end
end

local restored = 0
local saved_seq = tonumber(ARGV[2])
if redis.call('HEXISTS', KEYS[1], 'seq') == 0 then
  if saved_seq > 0 then
    -- Only saved numbers: the margin's unused numbers must stay "never
    -- seen" so the ticker skips them instead of admitting nobody.
    redis.call('HSET', KEYS[1], 'rst_t', ARGV[7], 'rst_n', saved_seq)
    saved_seq = saved_seq + tonumber(ARGV[6])
    restored = 1
  end
  redis.call('HSET', KEYS[1], 'seq', saved_seq)
end
if redis.call('HSETNX', KEYS[1], 'serving', ARGV[3]) == 1 and tonumber(ARGV[3]) > 0 then
  restored = 1
end
if tonumber(ARGV[4]) >= 0 and redis.call('HEXISTS', KEYS[1], 'pq') == 0 then
  redis.call('HSET', KEYS[1], 'pq', ARGV[4], 'shuf', ARGV[4] == '0' and 1 or 0)
  restored = 1
end
if ARGV[5] ~= '' and redis.call('HSETNX', KEYS[1], 'drawn', ARGV[5]) == 1 then
  restored = 1
end
return {written, restored}
