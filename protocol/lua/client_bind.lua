-- chat_bind: asks the node holding live connection ARGV[3] to make it user ARGV[1]'s session.
-- KEYS[1] = the connection's client index (-> user id, '' while anonymous).
-- ARGV[1] = user id, ARGV[2] = broadcast channel (the one channel an anonymous connection
-- listens to), ARGV[3] = client id.
-- Returns 'gone' (not live), 'bound' (already this user's: nothing to do), 'wait' (published;
-- the session answers on the bind reply list) or 'other:<uid>' (another user's connection).
-- The client index changes to the user only once the session has subscribed to the user's
-- conversations, so 'bound' always means the binding is effective.
local uid = redis.call('GET', KEYS[1])
if not uid then return 'gone' end
if uid == ARGV[1] then return 'bound' end
if uid ~= '' then return 'other:' .. uid end
redis.call('PUBLISH', ARGV[2], '@' .. ARGV[3] .. ' b' .. ARGV[1])
return 'wait'
