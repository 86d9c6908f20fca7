-- Remove one connection; when it was the user's last live one, the user goes offline.
-- KEYS[1..3] as presence_register; KEYS[4] = client index, KEYS[5] = all connections,
-- KEYS[6] = session. ARGV[1] = user id, ARGV[2] = connection id.
-- Returns how many live connections the user still has (1 for an anonymous connection,
-- ARGV[1] = '', which only leaves the client index and the connection list).
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if ARGV[1] == '' then
  redis.call('DEL', KEYS[4], KEYS[6])
  redis.call('ZREM', KEYS[5], ARGV[2])
  return 1
end
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[4], KEYS[6])
redis.call('ZREM', KEYS[5], ARGV[2])
local live = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
if live == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]
  redis.call('ZADD', KEYS[3], top, ARGV[1])
end
return live
