-- Accept one message into one or more conversations, atomically, in one round trip.
-- KEYS[1] = the persistence log stream (consumed by the sidecars' MySQL writer),
-- KEYS[2] = the flag a persisting node sets; without it nobody consumes the log, so none is kept.
-- For each target conversation i (1-based):
--   KEYS[2i+1] = sequence counter, KEYS[2i+2] = conversation stream
--   ARGV[6+2i-1] = conversation id ("u:bob"), ARGV[6+2i] = live channel
-- ARGV[1] = message id, ARGV[2] = from (JSON string or null), ARGV[3] = to (JSON string or null),
-- ARGV[4] = data (JSON text, spliced verbatim), ARGV[5] = conversation stream retention
-- (approximate MAXLEN), ARGV[6] = log cap (approximate MAXLEN of the log).
-- Returns the sequence number assigned in each target, in order.
local t = redis.call('TIME')
local ts = string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000))
local seqs = {}
local logged = redis.call('EXISTS', KEYS[2]) == 1
for i = 1, (#KEYS - 2) / 2 do
  local seq = redis.call('INCR', KEYS[2 * i + 1])
  local conv = ARGV[6 + 2 * i - 1]
  local env = '{"type":"message","id":"' .. ARGV[1] .. '","conv":"' .. conv
    .. '","seq":' .. seq .. ',"from":' .. ARGV[2] .. ',"to":' .. ARGV[3]
    .. ',"ts":' .. ts .. ',"data":' .. ARGV[4] .. '}'
  redis.call('XADD', KEYS[2 * i + 2], 'MAXLEN', '~', ARGV[5], seq .. '-0', 'e', env)
  if logged then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], '*', 'e', env)
  end
  redis.call('PUBLISH', ARGV[6 + 2 * i], 'm' .. seq .. ' ' .. env)
  seqs[i] = seq
end
return seqs
