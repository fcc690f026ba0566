-- adapt.lua: one step of a sale's adaptive admission rate (src/adaptive.rs).
-- Every instance reports its verdict on the hold path about once a second;
-- steps are rationed here, in Redis, so the rate moves the same way however
-- many instances report: at most one increase a second, and at most one
-- decrease a second (a decrease also holds increases off for two seconds).
--
-- Slow start: until the first decrease the rate grows by a quarter a step, so
-- it finds the hold path's capacity in seconds; after that by a tenth of the
-- configured rate (additive increase), and every decrease multiplies it by
-- 0.7 (multiplicative decrease): AIMD, as TCP does.
--
-- KEYS[1]  meta  hash  the sale's waiting-room state (`amode`, `aps`, `aceil`,
--                      `max`; writes `arate`, `a_up`, `a_dn`, `a_ss`)
-- ARGV[1]  now, unix milliseconds
-- ARGV[2]  verdict: 1 healthy and in demand (raise), 0 nothing to say,
--          -1 unhealthy (lower)
--
-- Returns the rate in force after the step, as text ('' for a fixed-rate sale).
local m = redis.call('HMGET', KEYS[1], 'amode', 'aps', 'aceil', 'arate', 'a_up', 'a_dn', 'a_ss', 'max')
if m[1] ~= 'adaptive' then
  return ''
end
local now = tonumber(ARGV[1])
local verdict = tonumber(ARGV[2])
local base = math.max(tonumber(m[2]) or 1, 1)
local rate = tonumber(m[4]) or base
local up_t = tonumber(m[5]) or 0
local down_t = tonumber(m[6]) or 0
-- The rate never needs to exceed what max_active could absorb in a second.
local ceiling = tonumber(m[3]) or math.max(tonumber(m[8]) or base, base)
if verdict < 0 and now - down_t >= 1000 then
  rate = math.max(1, rate * 0.7)
  redis.call('HSET', KEYS[1], 'a_dn', now, 'a_ss', 0)
elseif verdict > 0 and now - up_t >= 1000 and now - down_t >= 2000 then
  if m[7] ~= '0' then
    rate = rate * 1.25
  else
    rate = rate + math.max(1, base / 10)
  end
  redis.call('HSET', KEYS[1], 'a_up', now)
end
rate = math.min(rate, ceiling)
redis.call('HSET', KEYS[1], 'arate', tostring(rate))
return tostring(rate)
