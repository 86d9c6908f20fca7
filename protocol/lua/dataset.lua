-- A sidecar makes sure this Redis has its dataset marker, and the persistence log when the
-- sidecar persists, in one step: a push accepted between the two would otherwise not be logged.
-- KEYS[1] = the dataset marker, KEYS[2] = the log flag (its value: the most entries the log may
-- hold), KEYS[3] = the persistence log.
-- ARGV[1] = 'g' (nothing was lost: a new Redis, or one from before markers) or 'l' (it may have
-- lost data) for a missing marker, ARGV[2] = the log bound ('' when this node does not persist),
-- ARGV[3] = the log's consumer group.
-- Returns {marker, 1 when it was created now}.
local m = redis.call('GET', KEYS[1])
local created = 0
if not m then
  local t = redis.call('TIME')
  m = ARGV[1] .. string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))
  redis.call('SET', KEYS[1], m)
  created = 1
end
if ARGV[2] ~= '' and (created == 1 or redis.call('GET', KEYS[2]) ~= ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[2])
  -- BUSYGROUP when it exists already: fine.
  redis.pcall('XGROUP', 'CREATE', KEYS[3], ARGV[3], '0', 'MKSTREAM')
end
return {m, created}
