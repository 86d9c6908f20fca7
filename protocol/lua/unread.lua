-- Unread counts of one user: messages after the read pointer that the user did not send.
-- KEYS[1] = the user's read-state hash; then per conversation: KEYS[2i] = seq, KEYS[2i+1] = stream.
-- ARGV[1] = uid, ARGV[2] = most entries counted per conversation; per conversation i:
-- ARGV[2+2i-1] = conversation id, ARGV[2+2i] = sequence before which nothing counts (group join).
-- Returns a flat array: conversation, count, ... (only conversations with messages).
local own = ',"from":"' .. ARGV[1] .. '",'
local out = {}
for i = 1, (#KEYS - 1) / 2 do
  local conv = ARGV[2 + 2 * i - 1]
  local latest = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  if latest > 0 then
    local read = math.max(tonumber(redis.call('HGET', KEYS[1], conv) or '0'), tonumber(ARGV[2 + 2 * i]))
    local count = 0
    if latest > read then
      local entries = redis.call('XRANGE', KEYS[2 * i + 1], '(' .. read .. '-0', '+', 'COUNT', tonumber(ARGV[2]))
      for _, entry in ipairs(entries) do
        if not string.find(entry[2][2], own, 1, true) then count = count + 1 end
      end
      -- Entries already trimmed from the stream count as unread.
      local first = entries[1] and tonumber(string.match(entries[1][1], '^(%d+)')) or (latest + 1)
      if first > read + 1 then count = count + (first - read - 1) end
    end
    out[#out + 1] = conv
    out[#out + 1] = count
  end
end
return out
