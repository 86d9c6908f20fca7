-- chat_broadcast: a live-only event to every connected client on every node.
-- KEYS[1] = online-users zset. ARGV[1] = broadcast channel, ARGV[2] = payload JSON.
-- Returns how many users are online (the audience).
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('PUBLISH', ARGV[1], 'e{"type":"broadcast","data":' .. ARGV[2] .. '}')
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
