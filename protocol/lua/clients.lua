-- The GatewayClient facade's connection queries, in one round trip.
-- KEYS[1] = every live connection (zset, client id -> expiry ms).
-- ARGV[1] = namespace, ARGV[2] = mode, ARGV[3..] = groups (none: every connection).
-- Modes:
--   'users'    -> flat {client id, user id ('' if none), ...}          (at most one group)
--   'sessions' -> flat {client id, session or false, ...}              (at most one group)
--   'count'    -> {count} without groups, else one count per group, in order
-- A group's connections are the live connections of its members (groups are per user).
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ns, mode = ARGV[1], ARGV[2]

if #ARGV == 2 then
  if mode == 'count' then return {redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')} end
  local out = {}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
    out[#out + 1] = id
    if mode == 'users' then
      out[#out + 1] = redis.call('GET', ns .. ':client:' .. id) or ''
    else
      out[#out + 1] = redis.call('GET', ns .. ':session:' .. id)
    end
  end
  return out
end

local out = {}
for i = 3, #ARGV do
  local group, n = ARGV[i], 0
  for _, uid in ipairs(redis.call('SMEMBERS', ns .. ':{g:' .. group .. '}:members')) do
    local key = ns .. ':{u:' .. uid .. '}:conns'
    if mode == 'count' then
      n = n + redis.call('ZCOUNT', key, '(' .. now, '+inf')
    else
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', key, '(' .. now, '+inf')) do
        out[#out + 1] = id
        if mode == 'users' then
          out[#out + 1] = uid
        else
          out[#out + 1] = redis.call('GET', ns .. ':session:' .. id)
        end
      end
    end
  end
  if mode == 'count' then out[#out + 1] = n end
end
return out
