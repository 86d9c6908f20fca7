-- Record what devices have received: per field, the highest sequence acknowledged; never
-- lowered. Used for a user's inbox (KEYS[1] = the user's acked hash, field = the
-- conversation) and for a group (KEYS[1] = the group's acked hash, field = a member's uid).
-- A device connecting without cursors starts after it.
-- ARGV = field, seq, field, seq, ...
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > cur then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return redis.status_reply('OK')
