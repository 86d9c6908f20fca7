-- Track a group's online members for group.occupied / group.vacated.
-- KEYS[1] = the group's online-members set. ARGV[1] = uid, ARGV[2] = "online" or "offline".
-- Returns 1 when the group just became occupied (first online member) or vacated (last one left).
if ARGV[2] == 'online' then
  return (redis.call('SADD', KEYS[1], ARGV[1]) == 1 and redis.call('SCARD', KEYS[1]) == 1) and 1 or 0
end
return (redis.call('SREM', KEYS[1], ARGV[1]) == 1 and redis.call('SCARD', KEYS[1]) == 0) and 1 or 0
