-- A user read conversation ARGV[1] up to sequence ARGV[2].
-- KEYS[1] = the reader's read-state hash, KEYS[2] = the conversation's stream.
-- ARGV[3] = reader uid, ARGV[4] = reader's own live channel, ARGV[5] = namespace,
-- ARGV[6] = most entries to scan for senders.
-- Moves the read pointer forward (never back), tells the reader's other devices, and sends
-- each sender in the newly read range a receipt on their own inbox channel.
-- Returns the read pointer after the call.
local conv, upto, reader = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local old = tonumber(redis.call('HGET', KEYS[1], conv) or '0')
if upto <= old then return old end
redis.call('HSET', KEYS[1], conv, upto)
redis.call('PUBLISH', ARGV[4], 'e{"type":"read","conv":"' .. conv .. '","seq":' .. upto .. '}')
local entries = redis.call('XREVRANGE', KEYS[2], upto .. '-0', '(' .. old .. '-0', 'COUNT', tonumber(ARGV[6]))
local done = {}
for _, entry in ipairs(entries) do
  local env = entry[2][2]
  local from = string.match(env, ',"from":"([^"]+)"')
  if from and from ~= reader and not done[from] then
    done[from] = true
    local seq = string.match(entry[1], '^(%d+)')
    local id = string.match(env, '"id":"([^"]+)"')
    local ts = string.match(env, ',"ts":(%d+)')
    redis.call('PUBLISH', ARGV[5] .. ':{u:' .. from .. '}:live',
      'e{"type":"receipt","conv":"' .. conv .. '","reader":"' .. reader .. '","seq":' .. seq
      .. ',"id":"' .. id .. '","ts":' .. ts .. '}')
  end
end
return upto
