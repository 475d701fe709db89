--[[
queue_join.lua: a user joins an event's waiting room, or asks where they stand (a heartbeat).

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[1]  config     {ev:E}:room:config     hash  mode, engaged ("1": reserve needs a pass; set by
                                                 WaitingRoom.configure, and in mode auto by the
                                                 admission tick), state, opens_at_ms, ...
KEYS[2]  waiting    {ev:E}:room:waiting    zset  user -> ticket (admission order)
KEYS[3]  prequeue   {ev:E}:room:prequeue   zset  user -> join time (ms), before a scheduled opening
KEYS[4]  seq        {ev:E}:room:seq        string: the last ticket handed out
KEYS[5]  admitted   {ev:E}:room:admitted   zset  user -> active until (ms)
KEYS[6]  passes     {ev:E}:room:passes     hash  user -> "<ticket>:<admitted at ms>:<pass ttl ms>",
                                                 ":called" until a user called while away claims
                                                 it (any call of theirs here does)
KEYS[7]  presence   {ev:E}:room:presence   zset  user -> last seen (ms)
KEYS[8]  admit log  {ev:E}:room:admit_log  zset  user -> admitted at (ms), the last minutes
KEYS[9]  bucket     {ev:E}:room:bucket     hash  head: the last ticket admitted or removed; the
                                                 pace lua/queue_admit.lua keeps
KEYS[10] joined     {ev:E}:room:joined     hash  user -> when this place in line was taken (ms);
                                                 the admitter reads and drops it at admission
                                                 (the wait-time histogram)
KEYS[11] addresses  {ev:E}:room:join_addresses zset  address -> new places taken from it, kept
                                                 an hour past the last (join only; the operators'
                                                 signs of bots)
KEYS[12] pow used   {ev:E}:room:pow_used   zset  proof-of-work challenge id -> its expiry (ms):
                                                 each takes one place, once

ARGV[1]  user id    ARGV[2]  now (ms)    ARGV[3]  "join" or "status"
ARGV[4]  (join) the joiner's address
ARGV[5]  (join, with a proof of work only, as KEYS[12]) the zero bits the proof achieved (the
         gateway checks the challenge, waiting_room/pow.py)   ARGV[6]  its challenge id
ARGV[7]  its challenge's expiry (ms)

Returns {state, rank, ticket, admitted_at, waiting, admitted_last_minute, pass_ttl_ms, head,
opens_at_ms, rate_per_min, head_per_s, admits_per_s, pace_since, limited, pow_bits, closed_reason} (head read together
with rank, so a live-position stream can derive later places from the ticks; opens_at_ms 0 when
no opening is scheduled; the last five are the room's pace, for its waiting_room/eta.py, the
rates as strings since a reply's numbers are integers):
  open        the room is not engaged: no queue, no pass needed
  closed      the operator closed the room: nobody joins or is admitted (closed_reason: why, when
              the system closed it, e.g. tenant_suspended: lua/sale_state.lua; else "")
  sold_out    nothing available and nothing held: told to everyone not yet admitted
  prequeue    in line before the scheduled opening (order drawn at opening)
  waiting     rank = people ahead (0-based), ticket = place
  paused      as waiting, while the operator has paused admission
  admitted    admitted_at (ms): the caller issues the pass from it (for a user called while away,
              the moment they came back to claim it)
  not_joined  (status only) not in line
  pow_required (join) the room asks a new place for proof of work (pow_bits > 0) and the proof
              sent falls short, or its challenge took a place already
A join is idempotent: joining again keeps the place. A user whose pass has run out (and who
holds nothing) joins again at the back. Every call by a user in line refreshes their presence.
]]

local user, now, verb = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local config = redis.call('HMGET', KEYS[1], 'mode', 'engaged', 'state', 'opens_at_ms', 'rate_per_min', 'pow_bits',
  'closed_reason')
local pow_bits = tonumber(config[6] or '0')
local mode = config[1]
local waiting_count = redis.call('ZCARD', KEYS[2])
local recent = redis.call('ZCOUNT', KEYS[8], now - 60000, '+inf')
local bucket = redis.call('HMGET', KEYS[9], 'head', 'head_per_s', 'admits_per_s', 'pace_since', 'limited')
local head = tonumber(bucket[1] or '0')

local function reply(state, rank, ticket, admitted_at, pass_ttl)
  return {state, rank or -1, ticket or -1, admitted_at or -1, waiting_count, recent, pass_ttl or -1, head,
    tonumber(config[4] or '0'), tonumber(config[5] or '600'), bucket[2] or '0', bucket[3] or '0',
    tonumber(bucket[4] or '0'), tonumber(bucket[5] or '0'), pow_bits, config[7] or ''}
end

local pass = redis.call('HGET', KEYS[6], user)
if pass then
  local active_until = tonumber(redis.call('ZSCORE', KEYS[5], user) or '0')
  if active_until > now then
    local ticket, admitted_at, ttl, called = string.match(pass, '^(%d+):(%d+):(%d+)(.*)$')
    if called == ':called' then
      -- Called while away and back within the claim window: the pass starts now, whole.
      admitted_at = now
      redis.call('HSET', KEYS[6], user, ticket .. ':' .. now .. ':' .. ttl)
      redis.call('ZADD', KEYS[5], now + tonumber(ttl), user)
    end
    return reply('admitted', -1, tonumber(ticket), tonumber(admitted_at), tonumber(ttl))
  end
  if verb == 'status' then
    return reply('not_joined')
  end
  -- The pass ran out unused: this join is a new one, at the back.
  redis.call('HDEL', KEYS[6], user)
  redis.call('ZREM', KEYS[5], user)
end

if config[2] ~= '1' then
  return reply('open')
end

if config[3] == 'sold_out' then
  return reply('sold_out')
end
if mode == 'closed' then
  return reply('closed')
end

local in_line = mode == 'paused' and 'paused' or 'waiting'  -- paused: in line, nobody let in
local ticket = redis.call('ZSCORE', KEYS[2], user)
if ticket then
  redis.call('ZADD', KEYS[7], now, user)
  return reply(in_line, redis.call('ZRANK', KEYS[2], user), tonumber(ticket))
end
if redis.call('ZSCORE', KEYS[3], user) then
  redis.call('ZADD', KEYS[7], now, user)
  return reply('prequeue')
end
if verb == 'status' then
  return reply('not_joined')
end

-- A new place: the proof of work the room asks, each challenge taking one place only.
if pow_bits > 0 then
  if tonumber(ARGV[5] or '0') < pow_bits then
    return reply('pow_required')
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[12], '-inf', now)
  if redis.call('ZADD', KEYS[12], 'NX', tonumber(ARGV[7]), ARGV[6]) == 0 then
    return reply('pow_required')
  end
end

redis.call('ZADD', KEYS[7], now, user)
if ARGV[4] and ARGV[4] ~= '' then
  redis.call('ZINCRBY', KEYS[11], 1, ARGV[4])
  redis.call('EXPIRE', KEYS[11], 3600)
end
if tonumber(config[4] or '0') > now then
  redis.call('ZADD', KEYS[3], now, user)
  redis.call('HSET', KEYS[10], user, now)
  return reply('prequeue')
end
local new_ticket = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[2], new_ticket, user)
redis.call('HSET', KEYS[10], user, now)
waiting_count = waiting_count + 1
return reply(in_line, redis.call('ZRANK', KEYS[2], user), new_ticket)
