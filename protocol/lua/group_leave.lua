-- Remove a user from a group. KEYS as group_join (KEYS[3] unused but declared for Cluster).
-- Live sessions of the user stop receiving the group at once. Returns 1 when removed.
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], 'l' .. ARGV[2])
redis.call('PUBLISH', ARGV[4], 'e{"type":"member","group":"' .. ARGV[2] .. '","uid":"' .. ARGV[1] .. '","event":"leave"}')
return 1
