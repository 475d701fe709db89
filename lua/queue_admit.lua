--[[
queue_admit.lua: one admission tick for one event's waiting room. Admitters (any number) call it
every tick; the token bucket lives here, so several admitters never add up their rates.

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[1]  config     {ev:E}:room:config     hash  mode, engaged, state, opens_at_ms, rate_per_min,
                                                 max_active, pass_ttl_ms, grace_ms,
                                                 oversubscription, auto_active, auto_rps, shuffle_seed,
                                                 claim_ms
KEYS[2]  waiting    {ev:E}:room:waiting    zset  user -> ticket
KEYS[3]  prequeue   {ev:E}:room:prequeue   zset  user -> join time (ms)
KEYS[4]  seq        {ev:E}:room:seq        string: last ticket
KEYS[5]  admitted   {ev:E}:room:admitted   zset  user -> active until (ms): pass expiry, raised by
                                                 reserve_seats.lua to a hold's expiry; dropped
                                                 (with the passes entry) KEEP_MS after it
KEYS[6]  passes     {ev:E}:room:passes     hash  user -> "<ticket>:<admitted at ms>:<pass ttl ms>", and
                                                 ":called" while a called user has not claimed it
                                                 (lua/queue_join.lua claims it)
KEYS[7]  presence   {ev:E}:room:presence   zset  user -> last seen (ms), while in line
KEYS[8]  admit log  {ev:E}:room:admit_log  zset  user -> admitted at (ms), trimmed to 5 minutes
KEYS[9]  bucket     {ev:E}:room:bucket     hash  tokens, at (ms), head (last admitted ticket),
                                                 admitted (passes issued, ever), revoked_cursor
                                                 (where the walk over `revoked` resumes); the
                                                 pace: pace_at, pace_head, pace_admitted (the
                                                 last sample), head_per_s, admits_per_s
                                                 (smoothed), pace_since, limited
KEYS[10] holds      {ev:E}:expiry          zset  live holds (booking id -> expires at)
KEYS[11] hits       {ev:E}:room:hits       hash  second -> reserve requests (gateways' counts)
KEYS[12] shuffle    {ev:E}:room:shuffle    list  the pre-queue in its drawn order (audit)
KEYS[13] streams    {ev:E}:room:streams    hash  user -> the gateway process holding their open
                                                 live-position stream (lua/queue_stream.lua)
KEYS[14] leases     {ev:E}:room:leases     zset  gateway process -> its streams count as presence
                                                 until (ms); renewed once per heartbeat per process
KEYS[15] joined     {ev:E}:room:joined     hash  user -> join time (ms) (lua/queue_join.lua); the
                                                 admitter drops those admitted, this script those
                                                 abandoned
KEYS[16] revoked    {ev:E}:room:revoked    hash  pass id -> the pass's expiry (ms)
                                                 (lua/queue_revoke.lua); dropped once expired
KEYS[17] called     {ev:E}:room:called     zset  user -> end of their claim window (ms): admitted
                                                 while present only by a notification subscription
KEYS[18] notify     {ev:E}:room:notify     hash  user -> their notification subscription (JSON), one
                                                 per person in line (gateway/routes/queue.py)
KEYS[19..] zones    {ev:E}:zone:<s>:<z>    hash  available (every zone of every show)

ARGV[1]  now (ms)   ARGV[2]  most waiting users to look at in this call

Returns one JSON object: state (off, open, prequeue, admitting, paused, closed, sold_out), engaged
(0/1), admitted ([user, ticket, ...] flat), head (the last ticket admitted or removed: every
ticket at or below it has left the line, so a ticket's place is ticket - head less the few that
left out of turn), waiting, prequeue, active,
available, held, recent (admitted in the last minute), abandoned (removed this call), shuffled,
pass_ttl_ms (when admitting: the passes' lifetime, so gateways can issue them), trimmed
(admissions dropped this call, KEEP_MS past their active-until), pace (when admitting:
rate_per_min, head_per_s, admits_per_s, since, limited; waiting_room/eta.py), called ([user,
ticket, subscription, ...] flat: admitted while away, to be told; their pass waits for them to
claim it within claim_ms), missed ([user, subscription, ...] flat: a claim window ran out
unclaimed, the slot is back in the room; to be told), claims (claim windows open), claim_ms.

Admission order is ticket order. A user neither seen for grace_ms nor holding an open stream on a
live gateway process nor subscribed to notifications is removed without using a slot.
Active users (active-until in the future) never exceed max_active nor oversubscription x available.

The sale Redis runs noeviction, so every tick also removes what nobody can ask about any more,
in every state (a bounded amount per call): admissions KEEP_MS past their active-until, and
revocations of passes already expired.
]]

local FIRST_ZONE = 19
-- An admission stays a minute past its active-until: a reserve its pass let through at the last
-- moment may still be on its way (a command lives up to BR_COMMAND_DEADLINE_SECONDS, 30 s), and
-- reserve_seats.lua raises the active-until only of an admission still here.
local KEEP_MS = 60000

local now, max_scan = tonumber(ARGV[1]), tonumber(ARGV[2])
local c = redis.call('HMGET', KEYS[1], 'mode', 'engaged', 'state', 'opens_at_ms', 'rate_per_min',
  'max_active', 'pass_ttl_ms', 'grace_ms', 'oversubscription', 'auto_active', 'auto_rps', 'shuffle_seed',
  'claim_ms')
local mode = c[1] or 'off'
local claim_ms = tonumber(c[13] or '180000')
local out = {mode = mode, engaged = 0, admitted = {}, abandoned = 0, shuffled = 0, called = {}, missed = {},
  claim_ms = claim_ms}

local available = 0
for i = FIRST_ZONE, #KEYS do
  available = available + tonumber(redis.call('HGET', KEYS[i], 'available') or '0')
end
local held = redis.call('ZCARD', KEYS[10])
local active = redis.call('ZCOUNT', KEYS[5], '(' .. now, '+inf')
redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now - 300000)
out.available, out.held, out.active = available, held, active
out.head = tonumber(redis.call('HGET', KEYS[9], 'head') or '0')
redis.call('ZREMRANGEBYSCORE', KEYS[14], '-inf', '(' .. now)  -- leases of processes gone quiet

-- Past KEEP_MS nothing asks about an admission: queue_join.lua takes a user without one as it
-- takes one whose pass ran out (a join goes to the back, a status is not_joined). Such a user
-- is not in line (a new join first drops the old admission), so their presence, stream and
-- join time can go too (left over if the admitter stopped between this script and its read).
local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now - KEEP_MS, 'LIMIT', 0, max_scan)
for _, user in ipairs(expired) do
  redis.call('ZREM', KEYS[5], user)
  redis.call('HDEL', KEYS[6], user)
  redis.call('ZREM', KEYS[7], user)
  redis.call('HDEL', KEYS[13], user)
  redis.call('HDEL', KEYS[15], user)
end
out.trimmed = #expired
-- Claim windows that ran out, in every state: unclaimed, the admission goes (its slot is back
-- in the room at once) and the user is told; claimed, only the window's entry goes.
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[17], '-inf', now, 'LIMIT', 0, max_scan)
for _, user in ipairs(lapsed) do
  local entry = redis.call('HGET', KEYS[6], user)
  if entry and string.sub(entry, -7) == ':called' then
    redis.call('ZREM', KEYS[5], user)
    redis.call('HDEL', KEYS[6], user)
    redis.call('HDEL', KEYS[15], user)
    table.insert(out.missed, user)
    table.insert(out.missed, redis.call('HGET', KEYS[18], user) or '')
  end
  redis.call('ZREM', KEYS[17], user)
  redis.call('HDEL', KEYS[18], user)
end
-- A revocation matters only until its pass expires (gateways forget it at that tick too): one
-- bounded step of a walk over the hash per call, resumed where the last one stopped.
local cursor = redis.call('HGET', KEYS[9], 'revoked_cursor') or '0'
local step = redis.call('HSCAN', KEYS[16], cursor, 'COUNT', 100)
for i = 1, #step[2], 2 do
  if tonumber(step[2][i + 1]) <= now then
    redis.call('HDEL', KEYS[16], step[2][i])
  end
end
if step[1] ~= cursor then
  redis.call('HSET', KEYS[9], 'revoked_cursor', step[1])
end

local function finish(state)
  out.state = state
  out.recent = redis.call('ZCOUNT', KEYS[8], now - 60000, '+inf')  -- this tick's admissions included
  out.waiting = redis.call('ZCARD', KEYS[2])
  out.prequeue = redis.call('ZCARD', KEYS[3])
  out.claims = redis.call('ZCARD', KEYS[17])
  return cjson.encode(out)
end

-- Sold out only when nothing is left to sell and nothing held could come back.
if #KEYS >= FIRST_ZONE and available <= 0 and held == 0 then
  redis.call('HSET', KEYS[1], 'state', 'sold_out')
  out.engaged = c[2] == '1' and 1 or 0
  return finish('sold_out')
elseif c[3] == 'sold_out' then
  redis.call('HDEL', KEYS[1], 'state')  -- seats came back (an organizer added some)
end

if mode == 'off' then
  return finish('off')
end

-- `engaged` is set by WaitingRoom.configure for every mode but auto, which is decided here.
local engaged = c[2] == '1'
if mode == 'auto' then
  local second = math.floor(now / 1000)
  local rps = tonumber(redis.call('HGET', KEYS[11], tostring(second - 1)) or '0')
  redis.call('HDEL', KEYS[11], tostring(second - 3), tostring(second - 4), tostring(second - 5))
  local busy = held + active >= tonumber(c[10] or '1000') or rps >= tonumber(c[11] or '200')
  local queued = redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3])
  if not engaged and busy then
    engaged = true
  elseif engaged and not busy and queued == 0 then
    engaged = false  -- disengages only when nobody is waiting
  end
  redis.call('HSET', KEYS[1], 'engaged', engaged and '1' or '0')
end
out.engaged = engaged and 1 or 0
if not engaged then
  return finish('open')
end
if mode == 'closed' then
  return finish('closed')
end

local opens_at = tonumber(c[4] or '0')
if opens_at > now then
  return finish('prequeue')
end
-- Opening: the pre-queue gets a random order drawn from the recorded seed (Park-Miller, the
-- same generator as waiting_room/shuffle.py), over the members sorted, so anyone can replay it.
if redis.call('EXISTS', KEYS[3]) == 1 then
  local members = redis.call('ZRANGE', KEYS[3], 0, -1)
  table.sort(members)
  local x = tonumber(c[12] or '1') % 2147483647
  if x == 0 then x = 1 end
  for i = #members, 2, -1 do
    x = (x * 16807) % 2147483647
    local j = (x % i) + 1
    members[i], members[j] = members[j], members[i]
  end
  redis.call('DEL', KEYS[12])
  local first = redis.call('INCRBY', KEYS[4], #members) - #members
  for i, member in ipairs(members) do
    redis.call('ZADD', KEYS[2], first + i, member)
    redis.call('RPUSH', KEYS[12], member)
  end
  redis.call('DEL', KEYS[3])
  out.shuffled = #members
end
if mode == 'paused' then
  return finish('paused')
end

-- Token bucket: rate_per_min, holding at most one second's worth (one tick's admissions).
local rate = tonumber(c[5] or '600') / 60000
local bucket = redis.call('HMGET', KEYS[9], 'tokens', 'at')
local capacity = math.max(1, rate * 1000)
local tokens = tonumber(bucket[1] or capacity)  -- a new bucket starts full
local at = tonumber(bucket[2] or now)
-- Admissions are stamped with the latest clock any admitter has brought (the bucket's `at`), so
-- their times follow the order they happen in even when two admitters' calls cross.
local stamp = math.max(now, at)
if now > at then
  tokens = math.min(capacity, tokens + (now - at) * rate)
  at = now
end

local room = math.min(tonumber(c[6] or '1000'), math.floor(tonumber(c[9] or '1.5') * available)) - active
local grace_ms = tonumber(c[8] or '60000')
local pass_ttl_ms = tonumber(c[7] or '300000')
out.pass_ttl_ms = pass_ttl_ms
-- 'here': polled within the grace period, or holding a stream on a process whose lease is live;
-- 'away': neither, but subscribed to notifications (called, with a claim window); else nil.
local function presence(user)
  if tonumber(redis.call('ZSCORE', KEYS[7], user) or '0') >= now - grace_ms then
    return 'here'
  end
  local holder = redis.call('HGET', KEYS[13], user)
  if holder and tonumber(redis.call('ZSCORE', KEYS[14], holder) or '0') >= now then
    return 'here'
  end
  if redis.call('HEXISTS', KEYS[18], user) == 1 then
    return 'away'
  end
  return nil
end

local scanned = 0
while room > 0 and tokens >= 1 and scanned < max_scan do
  local want = math.min(room, math.floor(tokens), max_scan - scanned)
  local batch = redis.call('ZRANGE', KEYS[2], 0, want - 1, 'WITHSCORES')
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    local user, ticket = batch[i], batch[i + 1]
    scanned = scanned + 1
    redis.call('ZREM', KEYS[2], user)
    out.head = tonumber(ticket)
    local seen = presence(user)
    -- Out of line either way: presence is asked only of users in line, and the stream ends here.
    redis.call('ZREM', KEYS[7], user)
    redis.call('HDEL', KEYS[13], user)
    if not seen then
      redis.call('HDEL', KEYS[15], user)  -- the admitter reads join times only of those let in
      out.abandoned = out.abandoned + 1
    else
      if seen == 'here' then
        redis.call('ZADD', KEYS[5], stamp + pass_ttl_ms, user)
        redis.call('HSET', KEYS[6], user, ticket .. ':' .. stamp .. ':' .. pass_ttl_ms)
        redis.call('HDEL', KEYS[18], user)  -- on the page: no notice needed
        table.insert(out.admitted, user)
        table.insert(out.admitted, tonumber(ticket))
      else  -- the slot is theirs for the claim window; the pass is issued when they claim it
        redis.call('ZADD', KEYS[5], stamp + claim_ms, user)
        redis.call('HSET', KEYS[6], user, ticket .. ':' .. stamp .. ':' .. pass_ttl_ms .. ':called')
        redis.call('ZADD', KEYS[17], stamp + claim_ms, user)
        table.insert(out.called, user)
        table.insert(out.called, tonumber(ticket))
        table.insert(out.called, redis.call('HGET', KEYS[18], user))
      end
      redis.call('ZADD', KEYS[8], stamp, user)
      tokens = tokens - 1
      room = room - 1
      if room <= 0 or tokens < 1 then break end
    end
  end
end
redis.call('HSET', KEYS[9], 'tokens', tostring(tokens), 'at', at, 'head', out.head)
local total = tonumber(redis.call('HGET', KEYS[9], 'admitted') or '0')
local let_in = #out.admitted / 2 + #out.called / 3
if let_in > 0 then
  total = redis.call('HINCRBY', KEYS[9], 'admitted', let_in)
end
out.active = active + let_in

-- The room's pace, for the waits people are told (waiting_room/eta.py): how fast the head passes
-- tickets (admitted or gone) and how fast admissions go, each smoothed over PACE_TAU_MS, measured
-- since `pace_since`; a gap (paused, not ticked) restarts the measuring, keeping the rates.
-- `limited`: a limit (max_active, oversubscription x seats), not the rate, stopped this tick.
local PACE_TAU_MS, PACE_GAP_MS, PACE_STEP_MS = 15000, 5000, 500
local limited = room <= 0 and tokens >= 1 and redis.call('ZCARD', KEYS[2]) > 0
local p = redis.call('HMGET', KEYS[9], 'pace_at', 'pace_head', 'pace_admitted', 'head_per_s', 'admits_per_s',
  'pace_since')
local pace_at, head_rate, admit_rate, since = tonumber(p[1] or '0'), tonumber(p[4] or '0'), tonumber(p[5] or '0'),
  tonumber(p[6] or '0')
local sample = false
if pace_at == 0 or stamp - pace_at > PACE_GAP_MS then
  since, sample = stamp, true
elseif stamp - pace_at >= PACE_STEP_MS then
  local dt = stamp - pace_at
  local head_now = (out.head - tonumber(p[2])) * 1000 / dt
  local admit_now = (total - tonumber(p[3])) * 1000 / dt
  if not p[4] then  -- the first measure is taken as it is
    head_rate, admit_rate = head_now, admit_now
  else
    local w = 1 - math.exp(-dt / PACE_TAU_MS)
    head_rate, admit_rate = head_rate + w * (head_now - head_rate), admit_rate + w * (admit_now - admit_rate)
  end
  redis.call('HSET', KEYS[9], 'head_per_s', tostring(head_rate), 'admits_per_s', tostring(admit_rate))
  sample = true
end
if sample then
  redis.call('HSET', KEYS[9], 'pace_at', stamp, 'pace_head', out.head, 'pace_admitted', total, 'pace_since', since)
end
redis.call('HSET', KEYS[9], 'limited', limited and '1' or '0')
out.pace = {rate_per_min = tonumber(c[5] or '600'), head_per_s = head_rate, admits_per_s = admit_rate,
  since = since, limited = limited and 1 or 0}
return finish('admitting')
