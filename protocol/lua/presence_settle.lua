-- After the debounce: is the user still offline? Then they are announced offline (once).
-- KEYS[1] = user's connection zset, KEYS[2] = the user's "announced online" marker.
-- Returns 1 when the caller must announce the user offline.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf') > 0 then return 0 end
return redis.call('DEL', KEYS[2])
