-- source.lua: count a proof-of-work challenge handed to a source, and say
-- how many its address and its network (IPv4 /24, IPv6 /64) were handed
-- before it, this minute and the last (src/gate/mod.rs turns that into the
-- challenge's difficulty). Counts live per minute and expire two and a half
-- minutes later: a source is counted, never a waiting visitor.
--
-- KEYS[1]  addr:<m>    hash  address -> challenges handed out in minute m
-- KEYS[2]  net:<m>     zset  network -> challenges handed out in minute m
--                            (a zset, so the busiest networks are cheap to list)
-- KEYS[3]  addr:<m-1>  hash  the same, the minute before
-- KEYS[4]  net:<m-1>   zset
-- KEYS[5]  gate        hash  challenge outcome counters (`issued`, ...)
-- KEYS[6]  ch:<m>      string challenges handed out in minute m: the new
--                            challenge's serial number within the minute
-- ARGV[1]  the address
-- ARGV[2]  the network
--
-- Returns {address_before, network_before, n}: challenges handed to the
-- address and to the network in the two minutes, not counting this one,
-- and this one's serial number in minute m.
local address = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local network = tonumber(redis.call('ZINCRBY', KEYS[2], 1, ARGV[2]))
redis.call('EXPIRE', KEYS[1], 150)
redis.call('EXPIRE', KEYS[2], 150)
redis.call('HINCRBY', KEYS[5], 'issued', 1)
local address_before = tonumber(redis.call('HGET', KEYS[3], ARGV[1])) or 0
local network_before = tonumber(redis.call('ZSCORE', KEYS[4], ARGV[2])) or 0
local n = redis.call('INCR', KEYS[6])
redis.call('EXPIRE', KEYS[6], 150)
return {address - 1 + address_before, network - 1 + network_before, n}
