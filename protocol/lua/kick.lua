-- Ask every node holding a connection of the user to close it.
-- KEYS[1] = user's connection zset. ARGV[1] = the user's live channel, ARGV[2] = reason.
-- Returns how many live connections the user had.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local live = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
if live > 0 then
  redis.call('PUBLISH', ARGV[1], 'k' .. ARGV[2])
end
return live
