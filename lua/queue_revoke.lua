--[[
queue_revoke.lua: an operator revokes a user's queue pass. The user stops being active (their
slot goes back to the room) and the pass's id is remembered so every gateway refuses it.

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[1]  admitted  {ev:E}:room:admitted  zset  user -> active until (ms)
KEYS[2]  passes    {ev:E}:room:passes    hash  user -> "<ticket>:<admitted at ms>:<pass ttl ms>"
KEYS[3]  revoked   {ev:E}:room:revoked   hash  pass id -> expires at (ms)

ARGV[1]  user id   ARGV[2]  pass id (derived from the passes entry by the caller)
ARGV[3]  pass expiry (ms)   ARGV[4]  the passes entry the caller derived ARGV[2] from

Returns 1 when revoked, 0 when the user holds no pass, -1 when their pass changed meanwhile.
]]

local entry = redis.call('HGET', KEYS[2], ARGV[1])
if not entry then
  return 0
end
if entry ~= ARGV[4] then
  return -1
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
return 1
