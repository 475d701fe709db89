--[[
queue_stream.lua: a user's live-position stream opens or closes on a gateway process.

While the stream is open, the user counts as present (lua/queue_admit.lua) as long as that
process renews its lease (one ZADD per process per heartbeat, whatever its number of streams),
so an SSE-only user is never mistaken for gone, and no per-user write is needed per heartbeat.

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[1]  streams    {ev:E}:room:streams    hash  user -> gateway process holding their stream
KEYS[2]  presence   {ev:E}:room:presence   zset  user -> last seen (ms)
KEYS[3]  waiting    {ev:E}:room:waiting    zset  user -> ticket
KEYS[4]  prequeue   {ev:E}:room:prequeue   zset  user -> join time (ms)
KEYS[5]  leases     {ev:E}:room:leases     zset  gateway process -> its streams count until (ms)

ARGV[1]  "open" or "close"   ARGV[2]  user id   ARGV[3]  gateway process id   ARGV[4]  now (ms)
ARGV[5]  (open) the process's lease until (ms): its first stream in a room need not wait for the
         next heartbeat; a lease is only ever extended here

Returns 1 if the user is in line, else 0. Only users in line are touched. A close removes the
stream entry only if this process still holds it (the user may have reconnected elsewhere), and
counts as a last sighting, so the grace period runs from the moment the stream closed.
]]

local op, user, holder, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if not redis.call('ZSCORE', KEYS[3], user) and not redis.call('ZSCORE', KEYS[4], user) then
  if op == 'close' and redis.call('HGET', KEYS[1], user) == holder then
    redis.call('HDEL', KEYS[1], user)
  end
  return 0
end
redis.call('ZADD', KEYS[2], now, user)
if op == 'open' then
  redis.call('HSET', KEYS[1], user, holder)
  redis.call('ZADD', KEYS[5], 'GT', tonumber(ARGV[5]), holder)
elseif redis.call('HGET', KEYS[1], user) == holder then
  redis.call('HDEL', KEYS[1], user)
end
return 1
