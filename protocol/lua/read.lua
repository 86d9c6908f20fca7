-- A user read conversation ARGV[1] up to sequence ARGV[2].
-- KEYS[1] = the reader's read-state hash, KEYS[2] = the conversation's stream.
-- ARGV[3] = reader uid, ARGV[4] = reader's own live channel, ARGV[5] = namespace,
-- ARGV[6] = most entries to scan for senders.
-- Moves the read pointer forward (never back), tells the reader's other devices, and sends
-- each sender in the newly read range a receipt on their own inbox channel.
-- Returns the read pointer after the call.
-- Sequence numbers can exceed what Lua prints exactly with tostring (epochs start at Redis's
-- clock in microseconds), so they are kept as the strings Redis gave.
local conv, upto_s, reader = ARGV[1], ARGV[2], ARGV[3]
local upto = tonumber(upto_s)
local old_s = redis.call('HGET', KEYS[1], conv) or '0'
if upto <= tonumber(old_s) then return tonumber(old_s) end
redis.call('HSET', KEYS[1], conv, upto_s)
redis.call('PUBLISH', ARGV[4], 'e{"type":"read","conv":"' .. conv .. '","seq":' .. upto_s .. '}')
local entries = redis.call('XREVRANGE', KEYS[2], upto_s .. '-0', '(' .. old_s .. '-0', 'COUNT', tonumber(ARGV[6]))
local done = {}
for _, entry in ipairs(entries) do
  local env, from = entry[2][2], nil
  -- The sender as the push script stored it (field f), never a match over the envelope's
  -- text, whose data part anyone who can send chose.
  for f = 3, #entry[2], 2 do
    if entry[2][f] == 'f' then from = entry[2][f + 1] end
  end
  if from and from ~= reader and not done[from] then
    done[from] = true
    local seq = string.match(entry[1], '^(%d+)')
    local id = string.sub(env, 25, 50)
    local ts = string.match(env, ',"ts":(%d+)')
    redis.call('PUBLISH', ARGV[5] .. ':{u:' .. from .. '}:live',
      'e{"type":"receipt","conv":"' .. conv .. '","reader":"' .. reader .. '","seq":' .. seq
      .. ',"id":"' .. id .. '","ts":' .. ts .. '}')
  end
end
return upto
