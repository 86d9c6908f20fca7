-- Write the PHP session of a live connection (setSession / updateSession).
-- KEYS[1] = the connection's client index (its TTL is the connection's), KEYS[2] = the session.
-- ARGV[1] = the new session (serialize()d), ARGV[2] = '1' to write only if the session still is
-- ARGV[3] (compare-and-set, for updateSession's merge; '' = no session yet).
-- Returns 1 when written, 0 when the session changed meanwhile, -1 when the connection is not live.
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return -1 end
if ARGV[2] == '1' and (redis.call('GET', KEYS[2]) or '') ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl)
return 1
