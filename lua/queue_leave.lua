--[[
queue_leave.lua: a user leaves an event's waiting room (the line or the pre-queue): the place is
freed at once, so everyone behind is one closer at their next answer, and the admitter never
spends a look on it.

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[1]  waiting    {ev:E}:room:waiting    zset  user -> ticket
KEYS[2]  prequeue   {ev:E}:room:prequeue   zset  user -> join time (ms)
KEYS[3]  presence   {ev:E}:room:presence   zset  user -> last seen (ms)
KEYS[4]  streams    {ev:E}:room:streams    hash  user -> gateway process holding their stream
KEYS[5]  joined     {ev:E}:room:joined     hash  user -> when the place was taken (ms)
KEYS[6]  notify     {ev:E}:room:notify     hash  user -> notification subscription

ARGV[1]  user id

Returns 1 if the user was in line or in the pre-queue, else 0 (leaving twice changes nothing).
An admission already made is not touched: the pass runs out by itself.
]]

local user = ARGV[1]
local was = redis.call('ZREM', KEYS[1], user) + redis.call('ZREM', KEYS[2], user)
if was == 0 then
  return 0
end
redis.call('ZREM', KEYS[3], user)
redis.call('HDEL', KEYS[4], user)
redis.call('HDEL', KEYS[5], user)
redis.call('HDEL', KEYS[6], user)
return 1
