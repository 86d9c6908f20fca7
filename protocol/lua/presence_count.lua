-- Count members of a presence zset whose expiry (score, ms) is still in the future.
-- KEYS[1] = a user's connection zset (chat_is_online) or the online-users zset (chat_online_count).
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
