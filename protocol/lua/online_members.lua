-- Online members of a group: members whose presence has not expired.
-- KEYS[1] = group members set, KEYS[2] = online-users zset. ARGV[1] = 1 to list, 0 to count.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local out, n = {}, 0
for _, uid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local exp = redis.call('ZSCORE', KEYS[2], uid)
  if exp and tonumber(exp) > now then
    n = n + 1
    if ARGV[1] == '1' then out[#out + 1] = uid end
  end
end
if ARGV[1] == '1' then return out end
return n
