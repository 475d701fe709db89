--[[
cancel_hold.lua: the owner cancels a live reservation; its seats and the user's count return
exactly once.

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.
The caller reads show/zone from the hold to name KEYS[2]; the script checks they match.

KEYS[1]  hold            {ev:E}:hold:<booking id>   hash  status, user_id, show_id, zone_id,
                                                          quantity, expires_at, [cancelled_at]
KEYS[2]  zone            {ev:E}:zone:<show>:<zone>  hash  available, ...
KEYS[3]  per-user count  {ev:E}:user:<user>         string
KEYS[4]  expiry index    {ev:E}:expiry              zset  booking id -> expires_at (ms)
KEYS[5]  ended index     {ev:E}:ended               zset  booking id -> ended at (ms): holds that
                                                          ended with no payment, for the archiver
KEYS[6]  promo code uses  {ev:E}:promo_uses          hash  (lua/_pricing.lua): given back

ARGV[1]  booking id   ARGV[2]  now (ms)   ARGV[3]  requesting user id
ARGV[4]  show id      ARGV[5]  zone id    (what the caller named KEYS[2..3] after)
ARGV[6]  why, when the system cancels for the owner (event_cancelled); '' for the owner's own

Returns {result_json}; result.status is one of:
  cancelled        booking_id, user_id, show_id, zone_id, quantity, cancelled_at, remaining
                   (cancelling again answers the same: a redelivered command finds its result)
  not_cancellable  current: the hold's status (expired, or later confirmed; or cancelled, when
                   the hold is a tombstone: trimmed by the archiver long after it ended, so no
                   redelivery of the cancel that ended it can still arrive)
  not_found        no such hold, not the requester's, or KEYS that do not match it
The result of a cancel also carries `booking`: the whole hold after it (for the event).
]]

--#include _hold

local hold = redis.call('HMGET', KEYS[1], 'status', 'user_id', 'show_id', 'zone_id',
                        'quantity', 'cancelled_at', 'remaining_after')
local status = hold[1]
if status and is_tombstone(hold[2]) then
  return {cjson.encode({status = 'not_cancellable', booking_id = ARGV[1], current = status})}
end
if not status or hold[2] ~= ARGV[3] or hold[3] ~= ARGV[4] or hold[4] ~= ARGV[5] then
  return {cjson.encode({status = 'not_found', booking_id = ARGV[1]})}
end

local function cancelled(at, remaining)
  return {cjson.encode({
    status = 'cancelled', booking_id = ARGV[1], user_id = hold[2], show_id = hold[3],
    zone_id = hold[4], quantity = tonumber(hold[5]), cancelled_at = tonumber(at),
    remaining = tonumber(remaining), booking = record(KEYS[1]),
  })}
end

if status == 'cancelled' then
  return cancelled(hold[6], hold[7])
end
if status ~= 'reserved' then
  return {cjson.encode({status = 'not_cancellable', booking_id = ARGV[1], current = status})}
end

local now = tonumber(ARGV[2])
local remaining = release(KEYS[2], KEYS[3], KEYS[4], ARGV[1], tonumber(hold[5]), KEYS[1], KEYS[6])
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'cancelled_at', now, 'remaining_after', remaining)
if ARGV[6] and ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'cancel_reason', ARGV[6])
end
bump(KEYS[1])
redis.call('ZADD', KEYS[5], now, ARGV[1])
return cancelled(now, remaining)
