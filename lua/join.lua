-- join.lua: give a batch of visitors places in a sale's queue (or lottery
-- entries). An instance gathers the joins that arrive while its previous
-- call is in flight and sends them in one call, so a burst of joins costs
-- Redis one script run per batch, not per visitor.
--
-- KEYS[1]  meta   hash   the sale's waiting-room state (see src/waiting_room/mod.rs)
-- KEYS[2]  seen   string u32 per join number: last poll, unix seconds
--                        (0 = never joined, 1 = abandoned)
-- KEYS[3]  users  hash   signed-in user id -> join number, and '#<n>' -> user
-- ARGV[1]  now, unix seconds
-- ARGV[2..] one per visitor: the signed-in user id, or "" for an anonymous
--          visitor
--
-- Returns {code, state, serving, frozen, rate, drawn, n_1, again_1, ...}
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
--   n_i, again_i  the visitor's join number, and 1 if this signed-in user
--             already had it (0 for a new place)
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
local fresh = {}
for i = 2, #ARGV do
  local user = ARGV[i]
  local existing = false
  if user ~= '' then
    existing = redis.call('HGET', KEYS[3], user)
  end
  if existing then
    reply[#reply + 1] = tonumber(existing)
    reply[#reply + 1] = 1
  else
    local n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    fresh[#fresh + 1] = n
    if user ~= '' then
      -- '#<n>' maps back to the user, so admission events can name them.
      redis.call('HSET', KEYS[3], user, n, '#' .. n, user)
    end
    reply[#reply + 1] = n
    reply[#reply + 1] = 0
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
