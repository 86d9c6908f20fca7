-- Every online user that is in at least one group, with their groups and live connections
-- (GatewayClient's getAllGroupIdList / getAllGroupUidList / getAllGroupClientIdList).
-- KEYS[1] = online-users zset. ARGV[1] = namespace.
-- Returns {{uid, {group, ...}, {client id, ...}}, ...}.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ns, out = ARGV[1], {}
for _, uid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  local groups = redis.call('HKEYS', ns .. ':{u:' .. uid .. '}:groups')
  if #groups > 0 then
    local ids = redis.call('ZRANGEBYSCORE', ns .. ':{u:' .. uid .. '}:conns', '(' .. now, '+inf')
    if #ids > 0 then out[#out + 1] = {uid, groups, ids} end
  end
end
return out
