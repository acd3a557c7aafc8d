#!lua name=yiwang
-- Server-side half of dispatch/store/ingest.py: writes a whole ingest batch in one call, so the
-- per-fix work happens in Redis instead of in redis-py argument packing. Key names mirror
-- Keys (dispatch/store/keys.py); ingest.py is the only caller. Sections arrive as MessagePack.

local EVENTS_MAXLEN = 100000
-- Dead letters are bounded three ways: the stream's length, a quota per source and hour
-- (beyond it a rejection is only counted), and one shared source for every message that names
-- no bound device (bad topics, unknown or unregistered devices and sensors), so a flood of junk
-- or of invented serials neither grows Redis nor displaces the records of real devices.
local DEADLETTER_MAXLEN = 50000
local DEADLETTERS_PER_SOURCE = 500
local DEADLETTER_WINDOW_S = 3600
local UNBOUND_REASONS = {unknown_device = true, registration_limit = true, unknown_sensor = true}
local REJECTED_BY_DEVICE_MAX = 10000
local MESSAGE_DEDUPE_TTL_S = 7 * 24 * 3600
-- A device's index of stored fixes (its `seen` zset: duplicates, and the neighbours a late fix
-- is judged against) keeps the fixes of this many seconds before its newest one. A copy of a
-- fix older than that is no longer recognised by its fix (its message still is, for a week,
-- by MESSAGE_DEDUPE_TTL_S); without the bound the index grows by every fix, for ever.
local SEEN_HORIZON_S = 6 * 3600

-- Fix statuses returned to the caller, in batch order.
local STORED, DUPLICATE, CONFLICT = 0, 1, 2

-- fix = {dev, member, geo, fix_at, lon, lat, canonical, raw_sha256, hash, prev, backfill,
--        received_at, acc_m, cog_deg}; the last two are nil when the device did not say.
local function store_fixes(p, channel, fixes, statuses, positions, heard)
  local stored, backfilled = 0, 0
  local newest = {}
  for n = 1, #fixes do
    local dev, member, geo, fix_at, lon, lat, canonical, raw, hash, prev, backfill, fix_rx, acc,
      cog = unpack(fixes[n])
    local dev_key = p .. ':dev:' .. dev
    local seen_key = p .. ':seen:' .. dev
    local seen_member = fix_at .. '|' .. lon .. '|' .. lat
    -- Already judged: stored before, or rejected before (a redelivered copy judged again
    -- against newer state could otherwise pass as backfill).
    if redis.call('ZSCORE', seen_key, seen_member)
        or redis.call('EXISTS', p .. ':rejseen:' .. dev .. ':' .. raw) == 1 then
      statuses[n] = DUPLICATE  -- the caller files it as a rejection, with its payload
    elseif (redis.call('HGET', dev_key, 'head') or '') ~= prev then
      statuses[n] = CONFLICT
    else
      redis.call('ZADD', seen_key, fix_at, seen_member)
      local at = tonumber(fix_at)
      if newest[dev] == nil or at > newest[dev] then newest[dev] = at end
      if backfill == 1 then
        redis.call('XADD', p .. ':track:' .. dev, '*', 'f', canonical, 'r', raw, 'h', hash, 'b', '1')
        redis.call('HSET', dev_key, 'head', hash)
        backfilled = backfilled + 1
      else
        redis.call('XADD', p .. ':track:' .. dev, '*', 'f', canonical, 'r', raw, 'h', hash)
        redis.call('HSET', dev_key, 'head', hash, 'lon', lon, 'lat', lat, 'fix_at', fix_at,
          'fix', canonical)
        redis.call('GEOADD', p .. ':geo:' .. geo, lon, lat, member)
        -- A PositionRow (dispatch/core/feed.py).
        positions[#positions + 1] = {dev, tonumber(lon), tonumber(lat), fix_at,
          acc or cjson.null, cog or cjson.null, fix_rx}
      end
      heard[dev] = true
      statuses[n] = STORED
      stored = stored + 1
    end
  end
  for dev, at in pairs(newest) do
    redis.call('ZREMRANGEBYSCORE', p .. ':seen:' .. dev, '-inf', '(' .. (at - SEEN_HORIZON_S))
  end
  local stats = p .. ':stats'
  if stored > 0 then
    redis.call('HINCRBY', stats, 'accepted', stored)
    redis.call('HINCRBY', p .. ':accepted_by_channel', channel, stored)
  end
  if backfilled > 0 then redis.call('HINCRBY', stats, 'backfill', backfilled) end
end

-- reject = {dev, reason, detail, topic, payload, payload_sha256}
-- A rejected message redelivered after a crash (or repeated by the device) is kept once: the
-- copy counts as a duplicate, so every message has exactly one verdict. Past its source's
-- quota a rejection is counted without a record or a dedupe key, so a redelivered copy of it
-- is counted under its reason again.
local function store_rejects(p, rx, rejects)
  local stats = p .. ':stats'
  for n = 1, #rejects do
    local dev, reason, detail, topic, payload, payload_sha = unpack(rejects[n])
    local source = dev
    if UNBOUND_REASONS[reason] then source = '' end
    local quota_key = p .. ':dlquota:' .. source
    local kept = redis.call('INCR', quota_key)
    if kept == 1 then redis.call('EXPIRE', quota_key, DEADLETTER_WINDOW_S) end
    if kept <= DEADLETTERS_PER_SOURCE then
      local seen_key = p .. ':rejseen:' .. dev .. ':' .. payload_sha
      if reason ~= 'duplicate'
          and not redis.call('SET', seen_key, '1', 'NX', 'EX', MESSAGE_DEDUPE_TTL_S) then
        reason = 'duplicate'
        detail = 'the same message was already rejected: a redelivery or a repeated report'
      end
      redis.call('XADD', p .. ':deadletter', 'MAXLEN', '~', DEADLETTER_MAXLEN, '*',
        'rx', rx, 'device', dev, 'topic', topic, 'reason', reason, 'detail', detail,
        'payload', payload, 'payload_sha256', payload_sha)
    else
      redis.call('HINCRBY', stats, 'deadletters_dropped', 1)
    end
    redis.call('HINCRBY', stats, 'rejected:' .. reason, 1)
    if source ~= '' then
      local field = dev .. '|' .. reason
      if redis.call('HEXISTS', p .. ':rejected_by_device', field) == 1
          or redis.call('HLEN', p .. ':rejected_by_device') < REJECTED_BY_DEVICE_MAX then
        redis.call('HINCRBY', p .. ':rejected_by_device', field, 1)
      end
    end
  end
end

-- message = {kind, dev, officer, topic, body_json, sha256(topic, payload)}
-- Low volume, routed by kind. A redelivered copy is recognised by its digest.
local function store_messages(p, channel, messages, heard)
  for n = 1, #messages do
    local kind, dev, officer, topic, body, sha = unpack(messages[n])
    local fresh = redis.call('SET', p .. ':msgseen:' .. sha, '1', 'NX', 'EX', MESSAGE_DEDUPE_TTL_S)
    if not fresh then
      redis.call('HINCRBY', p .. ':stats', 'rejected:duplicate', 1)
    else
      if kind == 'devstat' then
        redis.call('HSET', p .. ':devstat', dev, body)
      else
        if kind == 'conn' or kind == 'lwt' then
          redis.call('HSET', p .. ':conn', dev, body)
        elseif kind == 'clip' then
          local clip = cjson.decode(body)
          redis.call('HSET', p .. ':clips', clip['clip_id'], body)
          redis.call('ZADD', p .. ':clips_by_officer:' .. officer, clip['start'], clip['clip_id'])
        end
        if kind ~= 'clip' then
          redis.call('XADD', p .. ':inbox', '*', 'kind', kind, 'device', dev, 'officer', officer,
            'body', body)
        end
        redis.call('XADD', p .. ':events', 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'type', kind,
          'device', dev, 'officer', officer, 'body', body)
      end
      heard[dev] = true
      redis.call('HINCRBY', p .. ':stats', 'accepted', 1)
      redis.call('HINCRBY', p .. ':stats', 'msg:' .. kind, 1)
      -- IoT sensors' readings come over MQTT, but are a channel of their own.
      local by = channel
      if kind == 'iot' then by = 'iot' end
      redis.call('HINCRBY', p .. ':accepted_by_channel', by, 1)
    end
  end
end

-- Stream ids compare as (ms, seq).
local function id_before(a, b)
  local a_ms, a_seq = string.match(a, '^(%d+)-(%d+)$')
  local b_ms, b_seq = string.match(b, '^(%d+)-(%d+)$')
  a_ms, b_ms = tonumber(a_ms), tonumber(b_ms)
  return a_ms < b_ms or (a_ms == b_ms and tonumber(a_seq) < tonumber(b_seq))
end

-- The engine's positions stream holds at most `bound` entries. An entry the bound drops before
-- the engine settled it (never read, or read by a leader that died before writing its step) is
-- counted in engine_stats with its fixes, never lost silently. Without the engine's group
-- (POSITIONS_GROUP in feed.py) nobody reads the stream yet, and nothing is counted.
local function trim_positions(p, bound)
  local key = p .. ':positions'
  local excess = redis.call('XLEN', key) + 1 - bound
  if excess <= 0 then return end
  local delivered
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local fields = {}
    for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
    if fields['name'] == 'engine' then delivered = fields['last-delivered-id'] end
  end
  if delivered then
    local entries, fixes = 0, 0
    for _, entry in ipairs(redis.call('XRANGE', key, '-', '+', 'COUNT', excess)) do
      local id = entry[1]
      if id_before(delivered, id)
          or #redis.call('XPENDING', key, 'engine', id, id, 1) > 0 then
        entries = entries + 1
        fixes = fixes + #cjson.decode(entry[2][2])
      end
    end
    if entries > 0 then
      local stats = p .. ':engine_stats'
      redis.call('HINCRBY', stats, 'positions_dropped_entries', entries)
      redis.call('HINCRBY', stats, 'positions_dropped', fixes)
    end
  end
  redis.call('XTRIM', key, 'MAXLEN', bound - 1)
end


-- memory = {dev, text}: the jump filter's memory of the device after this batch
-- (devices.sink.memory_text), kept so a restarted worker judges as the stopped one would have.
local function store_memories(p, memories)
  for n = 1, #memories do
    local dev, text = unpack(memories[n])
    redis.call('HSET', p .. ':dev:' .. dev, 'jumps', text)
  end
end

-- ARGV: prefix, received_at, oldest_received_at, fixes, rejects, messages, memories
-- (those four MessagePack), the positions stream's bound, the worker's backlog and the
-- intake channel.
local function ingest(keys, args)
  local p, rx, oldest, channel = args[1], args[2], tonumber(args[3]), args[10]
  local statuses, positions, heard = {}, {}, {}
  store_fixes(p, channel, cmsgpack.unpack(args[4]), statuses, positions, heard)
  store_rejects(p, rx, cmsgpack.unpack(args[5]))
  store_messages(p, channel, cmsgpack.unpack(args[6]), heard)
  store_memories(p, cmsgpack.unpack(args[7]))
  -- Receive-to-stored delay of this batch, by the Redis clock.
  local now = redis.call('TIME')
  local stored_at = tonumber(now[1]) + tonumber(now[2]) / 1e6
  redis.call('HSET', p .. ':ingest_status', 'lag_s', string.format('%.3f', stored_at - oldest),
    'at', string.format('%.3f', stored_at), 'backlog', args[9] or '0')
  -- One ZADD per chunk of devices: Lua's unpack() is limited to a few thousand values.
  local seen_at = {}
  for dev in pairs(heard) do
    seen_at[#seen_at + 1] = rx
    seen_at[#seen_at + 1] = dev
    if #seen_at >= 2000 then
      redis.call('ZADD', p .. ':seen_at', unpack(seen_at))
      seen_at = {}
    end
  end
  if #seen_at > 0 then redis.call('ZADD', p .. ':seen_at', unpack(seen_at)) end
  if #positions > 0 then
    local body = cjson.encode(positions)
    redis.call('XADD', p .. ':events', 'MAXLEN', '~', EVENTS_MAXLEN, '*',
      'type', 'positions', 'body', body)
    trim_positions(p, tonumber(args[8]))
    redis.call('XADD', p .. ':positions', '*', 'body', body)
  end
  return statuses
end

redis.register_function('ingest', ingest)

-- Stream ids as numbers to compare: "ms-seq".
local function id_parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

local function id_before(a, b)
  local a_ms, a_seq = id_parts(a)
  local b_ms, b_seq = id_parts(b)
  return a_ms < b_ms or (a_ms == b_ms and a_seq < b_seq)
end

-- Drop the entries of a stream (KEYS[1]) that every consumer group has read and
-- acknowledged: what stays begins at the oldest entry a group still holds unacknowledged or
-- has not read. Without groups nothing goes; neither does anything of a group that has read
-- nothing yet. Returns how many entries were dropped.
local function trim_consumed(keys, args)
  local stream = keys[1]
  if redis.call('EXISTS', stream) == 0 then return 0 end
  local keep = nil
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local info = {}
    for n = 1, #group, 2 do info[group[n]] = group[n + 1] end
    local from = info['last-delivered-id']
    if from == '0-0' then return 0 end
    -- Just after the last delivered: everything up to it has been read by this group.
    local ms, seq = id_parts(from)
    from = ms .. '-' .. (seq + 1)
    if tonumber(info['pending']) > 0 then
      from = redis.call('XPENDING', stream, info['name'])[2]
    end
    if keep == nil or id_before(from, keep) then keep = from end
  end
  if keep == nil then return 0 end
  return redis.call('XTRIM', stream, 'MINID', keep)
end

redis.register_function{function_name = 'trim_consumed', callback = trim_consumed}

-- Raise an alert once (dispatch/store/alerts.py): KEYS alerts hash, alerts by raise time, alerts
-- by ack time, the screens' stream; ARGV id, raised_at, record JSON, cap, drop acknowledged
-- before. An id already held is left as it is (a step redone, a watcher looking again) and
-- nothing goes to the screens; returns 1 when raised. Acknowledged alerts past their time go,
-- and beyond the cap the oldest, so the keys stay bounded however long the center runs.
local function raise_alert(keys, args)
  local alerts, by_raise, by_ack, events = keys[1], keys[2], keys[3], keys[4]
  local id, raised_at, record, cap, ack_before = args[1], args[2], args[3], tonumber(args[4]),
    args[5]
  if redis.call('HEXISTS', alerts, id) == 1 then return 0 end
  redis.call('HSET', alerts, id, record)
  redis.call('ZADD', by_raise, raised_at, id)
  redis.call('XADD', events, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'type', 'alert', 'body', record)
  local old = redis.call('ZRANGEBYSCORE', by_ack, '-inf', '(' .. ack_before)
  local excess = redis.call('ZCARD', by_raise) - cap
  if excess > 0 then
    for _, gone in ipairs(redis.call('ZRANGE', by_raise, 0, excess - 1)) do old[#old + 1] = gone end
  end
  for _, gone in ipairs(old) do
    redis.call('HDEL', alerts, gone)
    redis.call('ZREM', by_raise, gone)
    redis.call('ZREM', by_ack, gone)
  end
  return 1
end

redis.register_function('raise_alert', raise_alert)

-- Acknowledge an alert, if it is still as the caller read it (dispatch/store/alerts.py decides
-- from that reading): KEYS alerts hash, alerts by ack time, the screens' stream; ARGV id, the
-- record read, the acknowledged record, acknowledged at. Returns 1 when written, else the
-- record as it is now (false if gone), for the caller to decide again.
local function ack_alert(keys, args)
  local alerts, by_ack, events = keys[1], keys[2], keys[3]
  local id, read, acked, at = args[1], args[2], args[3], args[4]
  local now = redis.call('HGET', alerts, id)
  if now ~= read then return now end
  redis.call('HSET', alerts, id, acked)
  redis.call('ZADD', by_ack, at, id)
  redis.call('XADD', events, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'type', 'alert_ack', 'body', acked)
  return 1
end

redis.register_function('ack_alert', ack_alert)
