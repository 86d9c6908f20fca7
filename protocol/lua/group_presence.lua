-- A member of a group came online or went offline: track the group's online members (for
-- group.occupied / group.vacated) and tell the online members, unless there are too many of
-- them: every member coming online would otherwise cost one frame per online member, N²/2
-- frames for a group of N coming online together.
-- KEYS[1] = the group's online-members set, KEYS[2] = the group's live channel (same slot).
-- ARGV[1] = uid, ARGV[2] = "online" or "offline", ARGV[3] = the live payload of the presence
-- event, ARGV[4] = most online members to whom it is still published (0 = never).
-- Returns 1 when the group just became occupied (first online member) or vacated (last one left).
local edge
if ARGV[2] == 'online' then
  edge = redis.call('SADD', KEYS[1], ARGV[1]) == 1 and redis.call('SCARD', KEYS[1]) == 1
else
  edge = redis.call('SREM', KEYS[1], ARGV[1]) == 1 and redis.call('SCARD', KEYS[1]) == 0
end
local limit = tonumber(ARGV[4])
if limit > 0 and redis.call('SCARD', KEYS[1]) <= limit then
  redis.call('PUBLISH', KEYS[2], ARGV[3])
end
return edge and 1 or 0
