-- Register or refresh one live connection; expired connections of the user are dropped.
-- KEYS[1] = user's connection zset, KEYS[2] = user's connection-info hash, KEYS[3] = online-users zset,
-- KEYS[4] = the user's "announced online" marker, KEYS[5] = the connection's client index
-- (connection -> user id), KEYS[6] = every live connection (zset), KEYS[7] = the connection's
-- PHP session (refreshed, if PHP set one).
-- ARGV[1] = ttl (ms), ARGV[2] = user id, ARGV[3] = connection id, ARGV[4] = connection info JSON,
-- ARGV[5] = '1' for a new registration, '0' for a refresh.
-- Returns 1 when the user was not announced online yet (the caller announces it), else 0.
-- An anonymous connection (ARGV[2] = '', waiting for chat_bind) is only recorded in the client
-- index, the connection list and its session's expiry: it is no user's, so KEYS[1..4] are not
-- touched and it counts for no presence.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local exp = now + tonumber(ARGV[1])
if ARGV[2] == '' then
  -- A refresh must not undo a bind that happened since the node took its snapshot: it only
  -- renews an index entry that still says "no user" (or that lapsed).
  local cur = redis.call('GET', KEYS[5])
  if ARGV[5] == '1' or not cur or cur == '' then
    redis.call('SET', KEYS[5], '', 'PX', ARGV[1])
  end
  redis.call('ZADD', KEYS[6], exp, ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
  redis.call('PEXPIRE', KEYS[7], ARGV[1])
  return 0
end
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
-- The GatewayClient view: connection -> user, and all connections. Expired entries of crashed
-- nodes are dropped here, by whichever node registers next.
redis.call('SET', KEYS[5], ARGV[2], 'PX', ARGV[1])
redis.call('ZADD', KEYS[6], exp, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
redis.call('PEXPIRE', KEYS[7], ARGV[1])
-- The marker outlives a crashed node's entries long enough for a sweeper to announce offline.
if redis.call('SET', KEYS[4], '1', 'NX', 'PX', 2 * tonumber(ARGV[1])) then return 1 end
redis.call('PEXPIRE', KEYS[4], 2 * tonumber(ARGV[1]))
return 0
