-- Register or refresh one live connection; expired connections of the user are dropped.
-- KEYS[1] = user's connection zset, KEYS[2] = user's connection-info hash, KEYS[3] = online-users zset
-- ARGV[1] = ttl (ms), ARGV[2] = user id, ARGV[3] = connection id, ARGV[4] = connection info JSON
-- Returns the connection's new expiry (ms, Redis clock).
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local exp = now + tonumber(ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #dead > 0 then
  redis.call('HDEL', KEYS[2], unpack(dead))
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
end
redis.call('ZADD', KEYS[1], exp, ARGV[3])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
local top = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
redis.call('PEXPIREAT', KEYS[1], top)
redis.call('PEXPIREAT', KEYS[2], top)
redis.call('ZADD', KEYS[3], 'GT', exp, ARGV[2])
return exp
