-- Users whose every connection expired (their node died): take them out of the online set.
-- KEYS[1] = online-users zset. ARGV[1] = namespace, ARGV[2] = most users per call.
-- Returns the users the caller must announce offline (each returned by one node only).
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local out = {}
for _, uid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))) do
  if redis.call('ZREM', KEYS[1], uid) == 1 then
    if redis.call('DEL', ARGV[1] .. ':{u:' .. uid .. '}:announced') == 1 then out[#out + 1] = uid end
  end
end
return out
