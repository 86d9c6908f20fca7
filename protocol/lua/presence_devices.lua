-- List a user's live connections. KEYS[1] = connection zset, KEYS[2] = connection-info hash.
-- Returns a flat array: connection id, info JSON (false if missing), connection id, info JSON, ...
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
if #ids == 0 then return {} end
local infos = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i = 1, #ids do
  out[2 * i - 1] = ids[i]
  out[2 * i] = infos[i]
end
return out
