-- Add a user to a group (idempotent).
-- KEYS[1] = group members set, KEYS[2] = user's groups hash (group -> seq at join),
-- KEYS[3] = group sequence counter.
-- ARGV[1] = uid, ARGV[2] = group, ARGV[3] = user's inbox live channel, ARGV[4] = group live channel.
-- A new member starts after the group's current sequence: earlier messages are not theirs.
-- Live sessions of the user subscribe at once (control event on their inbox channel); the
-- group's members see a membership event. Returns 1 when newly added, 0 when already a member.
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
-- Kept as Redis's string: sequence numbers can exceed what Lua's tostring prints exactly.
local seq = redis.call('GET', KEYS[3]) or '0'
redis.call('HSET', KEYS[2], ARGV[2], seq)
redis.call('PUBLISH', ARGV[3], 'j' .. seq .. ' ' .. ARGV[2])
redis.call('PUBLISH', ARGV[4], 'e{"type":"member","group":"' .. ARGV[2] .. '","uid":"' .. ARGV[1] .. '","event":"join"}')
return 1
