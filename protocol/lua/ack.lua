-- Record what a user's devices have received: per conversation, the highest sequence any
-- device acknowledged. A device connecting without cursors starts after it.
-- KEYS[1] = the user's acked hash. ARGV = conversation, seq, conversation, seq, ...
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > cur then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return redis.status_reply('OK')
