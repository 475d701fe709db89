--[[
trim_hold.lua: shrink a hold that ended with no payment to a tombstone (status, version), once
PostgreSQL has its final state. The archiver (workers/archiver.py) calls it with the version it
read in PostgreSQL; a hold that moved on since, or ever had a payment, is never trimmed (late
money must still find its booking and payment until the event is archived).

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.
The caller reads the hold's user to name KEYS[3]; the script checks it matches.

KEYS[1]  hold             {ev:E}:hold:<booking id>   hash  (lua/reserve_seats.lua)
KEYS[2]  ended index      {ev:E}:ended               zset  booking id -> ended at (ms)
KEYS[3]  user's bookings  {ev:E}:bookings:<user>     zset  booking id -> created at (ms)

ARGV[1]  booking id   ARGV[2]  user id   ARGV[3]  the booking's version in PostgreSQL

Returns:
   1  trimmed: the hold is now {status, version}, out of the user's bookings and the ended index
   0  nothing to trim (gone, already a tombstone, live again, or had a payment): out of the index
  -1  PostgreSQL's version is not the hold's yet: left for a later pass
  -2  KEYS do not match the hold (caller bug); nothing changed
]]

--#include _hold

local hold = redis.call('HMGET', KEYS[1], 'status', 'user_id', 'version', 'payment_id')
local status = hold[1]
if not status or is_tombstone(hold[2]) or hold[4]
    or (status ~= 'expired' and status ~= 'cancelled') then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if hold[2] ~= ARGV[2] then
  return -2
end
if hold[3] ~= ARGV[3] then
  return -1
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'status', status, 'version', hold[3])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
