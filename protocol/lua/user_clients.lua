-- Live connections of several users (GatewayClient's getClientIdByUid / batchGetClientIdByUid).
-- ARGV[1] = namespace, ARGV[2..] = user ids. Returns one list of client ids per user, in order.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local out = {}
for i = 2, #ARGV do
  out[#out + 1] = redis.call('ZRANGEBYSCORE', ARGV[1] .. ':{u:' .. ARGV[i] .. '}:conns', '(' .. now, '+inf')
end
return out
