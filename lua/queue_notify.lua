--[[
queue_notify.lua: a user in an event's waiting room subscribes to be told when it is their turn
(a Web Push subscription), or drops it. A live subscription counts as presence: at their turn the
user is called with a claim window even if the page is closed (lua/queue_admit.lua).

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[1]  waiting    {ev:E}:room:waiting    zset  user -> ticket
KEYS[2]  prequeue   {ev:E}:room:prequeue   zset  user -> join time (ms)
KEYS[3]  notify     {ev:E}:room:notify     hash  user -> subscription (JSON): one per person per
                                                 room, a new one replacing the old

ARGV[1]  user id    ARGV[2]  the subscription (JSON, checked by the caller), or "" to drop it

Storing: 1 if the user is in line or in the pre-queue (stored), else 0 (nothing stored: a
subscription outside the line would never be read, nor removed). Dropping: 1 if there was one.
]]

local user, subscription = ARGV[1], ARGV[2]
if subscription == '' then
  return redis.call('HDEL', KEYS[3], user)
end
if not redis.call('ZSCORE', KEYS[1], user) and not redis.call('ZSCORE', KEYS[2], user) then
  return 0
end
redis.call('HSET', KEYS[3], user, subscription)
return 1
