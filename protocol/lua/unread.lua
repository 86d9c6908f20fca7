-- Unread counts of one user: messages after the read pointer that the user did not send.
-- KEYS[1] = the user's read-state hash; then per conversation: KEYS[3i-1] = seq,
-- KEYS[3i] = stream, KEYS[3i+1] = epoch hash.
-- ARGV[1] = uid, ARGV[2] = most entries counted per conversation; per conversation i:
-- ARGV[2+2i-1] = conversation id, ARGV[2+2i] = sequence before which nothing counts (group join).
-- Returns a flat array: conversation, count, ... (only conversations with messages).
-- Sequence numbers may exceed what Lua's tostring prints exactly, hence fmt().
local function fmt(n) return string.format('%.0f', n) end
local out = {}
for i = 1, (#KEYS - 1) / 3 do
  local conv = ARGV[2 + 2 * i - 1]
  local latest = tonumber(redis.call('GET', KEYS[3 * i - 1]) or '0')
  local base = tonumber(redis.call('HGET', KEYS[3 * i + 1], 'b') or '0')
  if latest > base then
    local read = math.max(tonumber(redis.call('HGET', KEYS[1], conv) or '0'), tonumber(ARGV[2 + 2 * i]))
    local count = 0
    if latest > read then
      local entries = redis.call('XRANGE', KEYS[3 * i], '(' .. fmt(read) .. '-0', '+', 'COUNT', tonumber(ARGV[2]))
      for _, entry in ipairs(entries) do
        local mine = false
        for f = 3, #entry[2], 2 do
          if entry[2][f] == 'f' and entry[2][f + 1] == ARGV[1] then mine = true end
        end
        if not mine then count = count + 1 end
      end
      -- Entries of this epoch already trimmed from the stream count as unread; the numbers
      -- between epochs were never messages.
      local first = entries[1] and tonumber(string.match(entries[1][1], '^(%d+)')) or (latest + 1)
      local from = math.max(read, base)
      if first > base and first > from + 1 then count = count + (first - from - 1) end
    end
    out[#out + 1] = conv
    out[#out + 1] = count
  end
end
return out
