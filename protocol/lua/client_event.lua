-- Something for one live connection only (sendToClient, closeClient): published on a channel
-- its node listens to, addressed to it ('@<client id> <payload>'), so only it acts on it.
-- KEYS[1] = the connection's client index (-> user id). ARGV[1] = namespace, ARGV[2] = client
-- id, ARGV[3] = broadcast channel, ARGV[4..] = payloads, published in order.
-- A connection with a user gets it on the user's inbox channel (only the nodes holding that
-- user's connections listen); one without a user yet (anonymous) on the broadcast channel.
-- Returns 1 when the connection is live, 0 when not (then nothing is published).
local ns, uid = ARGV[1], redis.call('GET', KEYS[1])
if not uid then return 0 end
local channel = ARGV[3]
if uid ~= '' then channel = ns .. ':{u:' .. uid .. '}:live' end
for i = 4, #ARGV do
  redis.call('PUBLISH', channel, '@' .. ARGV[2] .. ' ' .. ARGV[i])
end
return 1
