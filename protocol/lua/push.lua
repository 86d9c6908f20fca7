-- Accept one message into one or more conversations, atomically, in one round trip.
-- KEYS[1] = the persistence log stream (consumed by the sidecars' MySQL writer),
-- KEYS[2] = the flag a persisting node sets, holding the most entries the log may hold; without
--           it nobody consumes the log, so none is kept,
-- KEYS[3] = the dataset marker: 'g<id>' while this Redis holds every conversation it ever
--           had, 'l<id>' once it may have lost some; set by sidecars (lua/dataset.lua). Pushes
--           are refused while it is missing.
-- For each target conversation i (1-based):
--   KEYS[3i+1] = sequence counter, KEYS[3i+2] = conversation stream, KEYS[3i+3] = epoch hash
--   ARGV[7+2i-1] = conversation id ("u:bob"), ARGV[7+2i] = live channel
-- ARGV[1] = message id, ARGV[2] = from (JSON string or null), ARGV[3] = to (JSON string or null),
-- ARGV[4] = data (JSON text, spliced verbatim), ARGV[5] = conversation stream retention
-- (approximate MAXLEN), ARGV[6] = the replication id of the server the caller connected to
-- ('' = unknown), ARGV[7] = '1' when the caller may have sent this message before (a retry):
-- a conversation whose recent messages already hold its id is not written again.
-- Stream entries: field e = the envelope, f = the sender's user id (absent for the app's own).
-- Returns, per target in order: the sequence number, the epoch.
--
-- Epochs. A conversation's sequence must never go back or be handed out twice, but Redis can
-- lose writes: a restart without persistence, a failover to a replica that lagged, FLUSHALL.
-- Such a conversation starts a new epoch whose numbers begin far above any number it can have
-- issued before (Redis's clock in microseconds, and at least a million above what survived),
-- so nothing after a loss can be mistaken for something before it. The epoch hash records the
-- epoch (e), the sequence after which it starts (b), what survived of the previous one (p) and
-- the replication id under which the sequence was last advanced (r): a different one means
-- this server's history may not be everything the previous master held.
local function fmt(n) return string.format('%.0f', n) end
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local id, replid, retry = ARGV[1], ARGV[6], ARGV[7] == '1'
local n = (#KEYS - 3) / 3
-- The sender, also as a field of its own: receipts are routed by it, never by matching the
-- envelope's text (whose data part the sender wrote).
local sender = ARGV[2] ~= 'null' and string.sub(ARGV[2], 2, -2) or nil

-- A retry: the copies already written (found among the conversation's latest messages).
local found = {}
local todo = n
if retry then
  for i = 1, n do
    for _, entry in ipairs(redis.call('XREVRANGE', KEYS[3 * i + 2], '+', '-', 'COUNT', 1000)) do
      local env = entry[2][2]
      if string.sub(env, 25, 24 + #id) == id then
        found[i] = {tonumber(string.match(entry[1], '^(%d+)')), tonumber(string.match(env, ',"epoch":(%d+)') or '0')}
        todo = todo - 1
        break
      end
    end
  end
end

local logged = false
if todo > 0 then
  local cap = redis.call('GET', KEYS[2])
  if cap then
    logged = true
    local limit = tonumber(cap)
    if limit and limit > 0 and redis.call('XLEN', KEYS[1]) >= limit then
      return redis.error_reply('CHATBACKLOG the history log holds ' .. cap .. ' messages not yet stored in MySQL; is MySQL down?')
    end
  end
end

local marker = redis.call('GET', KEYS[3])
if todo > 0 and not marker then
  -- Without it, a conversation missing here could be new or lost, and a lost one must not
  -- count from 1 again. A sidecar sets it within a second of finding it gone.
  return redis.error_reply('CHATNOTREADY this Redis has no chat dataset marker (it is new, restarted empty or was flushed); a chat-sidecar sets it within a second')
end
local t = redis.call('TIME')
local ts = fmt(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local out = {}
for i = 1, n do
  if found[i] then
    out[2 * i - 1], out[2 * i] = found[i][1], found[i][2]
  else
    local seqk, streamk, epochk = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
    local conv, channel = ARGV[7 + 2 * i - 1], ARGV[7 + 2 * i]
    local cur = redis.call('GET', seqk)
    if cur and not tonumber(cur) then
      return redis.error_reply('ERR value is not an integer or out of range: ' .. seqk)
    end
    local ep = redis.call('HMGET', epochk, 'e', 'r')
    local epoch = ep[1]
    if not cur or not epoch then
      local base = 0
      if cur and string.sub(marker, 1, 1) == 'g' then
        -- A conversation from before epochs: its numbers stay, in the dataset's first epoch.
        epoch, base = string.sub(marker, 2), tonumber(cur)
      elseif not cur and not epoch and string.sub(marker, 1, 1) == 'g' then
        -- New, on a dataset that never lost anything.
        epoch = string.sub(marker, 2)
      else
        -- Its state is gone (or half gone): it may have used any number below the clock.
        base = math.max(now_us(), (tonumber(cur) or 0) + 1000000)
        epoch = fmt(base)
      end
      redis.call('HSET', epochk, 'e', epoch, 'b', fmt(base), 'p', cur or '0', 'r', replid)
      redis.call('SET', seqk, fmt(base))
    elseif replid ~= '' and ep[2] ~= replid then
      -- Last advanced under another replication history: messages after what this server
      -- holds may have been handed out and lost.
      local base = math.max(now_us(), tonumber(cur) + 1000000)
      epoch = fmt(base)
      redis.call('HSET', epochk, 'e', epoch, 'b', epoch, 'p', cur, 'r', replid)
      redis.call('SET', seqk, epoch)
    end
    local seq = fmt(redis.call('INCR', seqk))
    local env = '{"type":"message","id":"' .. id .. '","conv":"' .. conv
      .. '","seq":' .. seq .. ',"epoch":' .. epoch .. ',"from":' .. ARGV[2] .. ',"to":' .. ARGV[3]
      .. ',"ts":' .. ts .. ',"data":' .. ARGV[4] .. '}'
    if sender then
      redis.call('XADD', streamk, 'MAXLEN', '~', ARGV[5], seq .. '-0', 'e', env, 'f', sender)
    else
      redis.call('XADD', streamk, 'MAXLEN', '~', ARGV[5], seq .. '-0', 'e', env)
    end
    if logged then
      -- Never trimmed: an entry leaves the log once it is in MySQL (or dead-lettered).
      redis.call('XADD', KEYS[1], '*', 'e', env)
    end
    redis.call('PUBLISH', channel, 'm' .. seq .. ' ' .. env)
    out[2 * i - 1], out[2 * i] = tonumber(seq), tonumber(epoch)
  end
end
return out
