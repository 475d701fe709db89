--[[
expire_hold.lua: release one expired hold, returning its seats and the user's count exactly once.

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.
The caller reads user/show/zone from the hold to name KEYS[2..3]; the script checks they match.

KEYS[1]  hold            {ev:E}:hold:<booking id>   hash  status, user_id, show_id, zone_id,
                                                          quantity, expires_at, [expired_at]
KEYS[2]  zone            {ev:E}:zone:<show>:<zone>  hash  available, ...
KEYS[3]  per-user count  {ev:E}:user:<user>         string
KEYS[4]  expiry index    {ev:E}:expiry              zset  booking id -> expires_at (ms)
KEYS[5]  ended index     {ev:E}:ended               zset  booking id -> ended at (ms): holds that
                                                          ended with no payment, for the archiver
KEYS[6]  promo code uses  {ev:E}:promo_uses          hash  (lua/_pricing.lua): given back

ARGV[1]  booking id      ARGV[2]  now (ms)
ARGV[3]  user id, ARGV[4] show id, ARGV[5] zone id: what the caller named KEYS[2..3] after

Returns {code, result_json}:
   1  expired now: seats returned, count lowered
   2  already expired earlier: nothing changed; the same result, so the event can be re-emitted
   0  nothing to expire (no such hold, it was confirmed or cancelled, or it is a tombstone: the
      archiver trimmed it once PostgreSQL had its end); removed from the index
  -1  not due yet (expires_at is still ahead of now)
  -2  KEYS do not match the hold (caller bug); nothing changed
With 1 and 2 the result also carries `booking`: the whole hold after it (for the event). A hold
in `paying` is not expired here: the sweeper asks the payment provider about it instead (0).
]]

--#include _hold

local hold = redis.call('HMGET', KEYS[1], 'status', 'user_id', 'show_id', 'zone_id',
                        'quantity', 'expires_at', 'expired_at', 'remaining_after')
local status = hold[1]
if not status or is_tombstone(hold[2]) then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return {0, '{}'}
end
if hold[2] ~= ARGV[3] or hold[3] ~= ARGV[4] or hold[4] ~= ARGV[5] then
  return {-2, '{}'}
end

local function result(expired_at, remaining)
  return cjson.encode({
    booking_id = ARGV[1], user_id = hold[2], show_id = hold[3], zone_id = hold[4],
    quantity = tonumber(hold[5]), expired_at = tonumber(expired_at), remaining = tonumber(remaining),
    booking = record(KEYS[1]),
  })
end

if status == 'expired' then
  return {2, result(hold[7], hold[8])}
end
if status == 'paying' then
  return {0, '{}'}  -- stays in the index: its paying deadline is the sweeper's cue to ask
end
if status ~= 'reserved' then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return {0, '{}'}
end

local now = tonumber(ARGV[2])
if tonumber(hold[6]) > now then
  return {-1, '{}'}
end

local remaining = release(KEYS[2], KEYS[3], KEYS[4], ARGV[1], tonumber(hold[5]), KEYS[1], KEYS[6])
redis.call('HSET', KEYS[1], 'status', 'expired', 'expired_at', now, 'remaining_after', remaining)
bump(KEYS[1])
redis.call('ZADD', KEYS[5], now, ARGV[1])
return {1, result(now, remaining)}
