-- join.lua: give a batch of visitors places in a sale's queue (or lottery
-- entries). An instance gathers the joins that arrive while its previous
-- call is in flight and sends them in one call, so a burst of joins costs
-- Redis one script run per batch, not per visitor.
--
-- KEYS[1]  meta   hash   the sale's waiting-room state (see src/waiting_room/mod.rs)
-- KEYS[2]  seen   string u32 per join number: last poll, unix seconds
--                        (0 = never joined, 1 = abandoned)
-- KEYS[3]  users  hash   signed-in user id -> join number, and '#<n>' -> user
-- KEYS[4]  gate   hash   the gate's counters: `solved` counts the
--                        challenges that joined
-- KEYS[5..4+b]  pow:<minute>  bitmap  bit n: the n-th proof-of-work
--                        challenge handed out in that minute has joined
--                        (src/gate/challenge.rs); dropped once they expired
-- ARGV[1]  now, unix seconds
-- ARGV[2]  b, the number of pow bitmaps in KEYS
-- ARGV[3..2+b]  when each pow bitmap may go (EXPIREAT, unix seconds)
-- ARGV[3+b..] three per visitor: the signed-in user id ("" for an anonymous
--          visitor), the serial number n of the solved challenge it joins
--          with, and the index (1..b) of its pow bitmap (0 and 0 without one)
--
-- Returns {code, state, serving, frozen, rate, drawn, n_1, flag_1, ...}
--   code      1 = places given (per visitor below),
--            -1 = the sale is not known to Redis yet (caller syncs and retries),
--            -2 = the sale no longer takes joins (state says why: 'closed',
--                 'sold_out', or 'drawn' for a drawn lottery)
--   state, serving, rate ('' when unknown), drawn ('' before a draw): the
--             standing every new place shares, as status.lua would report it,
--             so a join is one round trip and no second call can fail after
--             the number is taken
--   frozen    1 once the pre-queue is frozen (a new number then queues FIFO
--             at its own number), 0 while it is open (its order is drawn
--             when it freezes)
--   n_i, flag_i  the visitor's join number and what it is: 0 a new place,
--             1 the place this signed-in user already had, 2 refused
--             because the challenge already joined (n_i is then 0)
local m = redis.call('HMGET', KEYS[1], 'state', 'mode', 'drawn', 'serving', 'pq', 'rate')
local state = m[1]
if not state then
  return {-1, '', 0, 0, '', ''}
end
if state == 'closed' or state == 'sold_out' then
  return {-2, state, 0, 0, '', ''}
end
if m[3] and m[2] == 'lottery' then
  return {-2, 'drawn', 0, 0, '', ''}
end
local reply = {1, state, tonumber(m[4]) or 0, m[5] and 1 or 0, m[6] or '', m[3] or ''}
local maps = tonumber(ARGV[2])
local solved = 0
-- First who needs a new number (reply slots left false), then one HINCRBY
-- for all of them: the numbers go out in batch order, as one per visitor would.
local wanting = 0
local pending, again = {}, {}
for i = 3 + maps, #ARGV, 3 do
  local user, serial, map = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local n, flag = false, 0
  if map > 0 then
    if redis.call('SETBIT', KEYS[4 + map], serial, 1) == 1 then
      n, flag = 0, 2
    else
      solved = solved + 1
    end
  end
  if not n and user ~= '' then
    local had = redis.call('HGET', KEYS[3], user)
    if had then
      n, flag = tonumber(had), 1
    elseif pending[user] then
      -- The same user twice in one batch (two devices): one place.
      again[#reply + 1], n, flag = pending[user], 0, 1
    else
      pending[user] = #reply + 1
    end
  end
  if not n then
    wanting = wanting + 1
  end
  reply[#reply + 1] = n
  reply[#reply + 1] = flag
end
local fresh = {}
if wanting > 0 then
  local n = redis.call('HINCRBY', KEYS[1], 'seq', wanting) - wanting
  for slot = 7, #reply, 2 do
    if not reply[slot] then
      n = n + 1
      reply[slot] = n
      fresh[#fresh + 1] = n
      local user = ARGV[3 + maps + (slot - 7) / 2 * 3]
      if user ~= '' then
        -- '#<n>' maps back to the user, so admission events can name them.
        redis.call('HSET', KEYS[3], user, n, '#' .. n, user)
      end
    end
  end
  for slot, first in pairs(again) do
    reply[slot] = reply[first]
  end
end
if solved > 0 then
  redis.call('HINCRBY', KEYS[4], 'solved', solved)
  for b = 1, maps do
    redis.call('EXPIREAT', KEYS[4 + b], ARGV[2 + b])
  end
end
-- One BITFIELD for the whole batch (chunked to keep the argument list small).
local chunk = {}
for i = 1, #fresh do
  chunk[#chunk + 1] = 'SET'
  chunk[#chunk + 1] = 'u32'
  chunk[#chunk + 1] = '#' .. fresh[i]
  chunk[#chunk + 1] = ARGV[1]
  if #chunk >= 1000 or i == #fresh then
    redis.call('BITFIELD', KEYS[2], unpack(chunk))
    chunk = {}
  end
end
return reply
