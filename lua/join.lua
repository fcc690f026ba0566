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
-- ARGV[3+b..] one per visitor, in join order: "" for an anonymous visitor
--          without a challenge (the burst's usual case: nothing to look
--          up), else "<map>:<serial>:<user>": the index (1..b) of its pow
--          bitmap and the serial number n of the solved challenge (0 and 0
--          without one), and the signed-in user id ("" for an anonymous one)
--
-- Returns {code, state, serving, frozen, rate, drawn, first, i_1, n_1, flag_1, ...}
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
--   first     the first new join number (0 when nobody got one): the new
--             numbers go out in join order, first, first + 1, ..., to every
--             visitor not listed after it
--   i_k, n_k, flag_k  a visitor who got no new number: its index in the
--             batch (1-based), its join number, and why: 1 the place this
--             signed-in user already had (also the second device of one user
--             in one batch), 2 refused because the challenge already joined
--             (n_k is then 0)
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
local reply = {1, state, tonumber(m[4]) or 0, m[5] and 1 or 0, m[6] or '', m[3] or '', 0}
local maps = tonumber(ARGV[2])
local visitors = #ARGV - 2 - maps
local solved = 0
-- First who needs a new number: everyone but the listed ones.
local listed = {}     -- batch index -> {n, flag}; n is false for a second
                      -- device whose first device's number is not out yet
local newcomers = {}  -- batch index -> user id, for users without a place
local firsts = {}     -- user id -> batch index of its first device here
local wanting = visitors
local named = false
for i = 1, visitors do
  local entry = ARGV[2 + maps + i]
  if entry ~= '' then
    local map, serial, user = string.match(entry, '^(%d+):(%d+):(.*)$')
    map = tonumber(map)
    if map > 0 and redis.call('SETBIT', KEYS[4 + map], serial, 1) == 1 then
      listed[i] = {0, 2}
    else
      if map > 0 then
        solved = solved + 1
      end
      if user ~= '' then
        local had = redis.call('HGET', KEYS[3], user)
        if had then
          listed[i] = {tonumber(had), 1}
        elseif firsts[user] then
          -- The same user twice in one batch (two devices): one place.
          listed[i] = {false, 1, firsts[user]}
        else
          firsts[user] = i
          newcomers[i] = user
          named = true
        end
      end
    end
    if listed[i] then
      wanting = wanting - 1
    end
  end
end
local now = ARGV[1]
if wanting > 0 then
  local first = redis.call('HINCRBY', KEYS[1], 'seq', wanting) - wanting + 1
  reply[7] = first
  -- Every new number was last seen now: one write of `wanting` u32s.
  redis.call('SETRANGE', KEYS[2], first * 4, string.rep(struct.pack('>I4', tonumber(now)), wanting))
  if named then
    local numbers = {}
    local n = first
    for i = 1, visitors do
      if not listed[i] then
        numbers[i] = n
        local user = newcomers[i]
        if user then
          -- '#<n>' maps back to the user, so admission events can name them.
          redis.call('HSET', KEYS[3], user, n, '#' .. n, user)
        end
        n = n + 1
      end
    end
    for i, place in pairs(listed) do
      if not place[1] then
        place[1] = numbers[place[3]]
      end
    end
  end
end
for i = 1, next(listed) and visitors or 0 do
  local place = listed[i]
  if place then
    reply[#reply + 1] = i
    reply[#reply + 1] = place[1]
    reply[#reply + 1] = place[2]
  end
end
if solved > 0 then
  redis.call('HINCRBY', KEYS[4], 'solved', solved)
  for b = 1, maps do
    redis.call('EXPIREAT', KEYS[4 + b], ARGV[2 + b])
  end
end
return reply
