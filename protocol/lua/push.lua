-- Accept one message into one or more conversations, atomically, in one round trip.
-- For each target conversation i (1-based):
--   KEYS[2i-1] = sequence counter, KEYS[2i] = stream
--   ARGV[5+2i-1] = conversation id ("u:bob"), ARGV[5+2i] = live channel
-- ARGV[1] = message id, ARGV[2] = from (JSON string or null), ARGV[3] = to (JSON string or null),
-- ARGV[4] = data (JSON text, spliced verbatim), ARGV[5] = stream retention (approximate MAXLEN).
-- Returns the sequence number assigned in each target, in order.
local t = redis.call('TIME')
local ts = string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000))
local seqs = {}
for i = 1, #KEYS / 2 do
  local seq = redis.call('INCR', KEYS[2 * i - 1])
  local env = '{"type":"message","id":"' .. ARGV[1] .. '","conv":"' .. ARGV[5 + 2 * i - 1]
    .. '","seq":' .. seq .. ',"from":' .. ARGV[2] .. ',"to":' .. ARGV[3]
    .. ',"ts":' .. ts .. ',"data":' .. ARGV[4] .. '}'
  redis.call('XADD', KEYS[2 * i], 'MAXLEN', '~', ARGV[5], seq .. '-0', 'e', env)
  redis.call('PUBLISH', ARGV[5 + 2 * i], 'm' .. seq .. ' ' .. env)
  seqs[i] = seq
end
return seqs
