--[[
begin_payment.lua: reserved -> paying, before the provider is charged. One payment per booking
(its id is derived from the booking id), so asking again answers the payment already begun.

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[1]  hold            {ev:E}:hold:<booking id>     hash  (lua/reserve_seats.lua; here: status
                                                            paying, payment_id, paying_until)
KEYS[2]  payment         {ev:E}:payment:<payment id>  hash  booking_id, user_id, amount_cents,
                                                            method, masked, status, attempts,
                                                            created_at, updated_at, version
KEYS[3]  expiry index    {ev:E}:expiry                zset  booking id -> deadline (ms); a paying
                                                            hold's deadline is paying_until
KEYS[4]  event meta      {ev:E}:meta                  hash  suspended, cancelled (lua/sale_state.lua)

ARGV[1]  booking id   ARGV[2]  payment id   ARGV[3]  requesting user id   ARGV[4]  method
ARGV[5]  masked payment details (e.g. "card ****4242")   ARGV[6]  now (ms)
ARGV[7]  how long a paying hold lasts (ms): longer than a reservation (spec §10.4: extend it,
         do not drop it while the provider decides)

Returns {result_json}; result.status is one of:
  paying           booking (the hold after it), payment: begun now
  payment_exists   booking, payment: begun before (same booking): the caller answers that one
  reservation_expired  the hold's time ran out (the sweeper returns its seats), or it was released
  not_payable      current: cancelled, confirmed by another way, refunded
(A tombstone, lua/_hold.lua, answers reservation_expired or not_payable whoever asks: the
gateway checks its owner in PostgreSQL first.)
  not_found        no such hold, or not the requester's
  tenant_suspended the event's tenant is suspended: no payment begins (one begun settles)
  event_cancelled  the event was cancelled (lua/sale_state.lua): no payment begins
]]

--#include _hold

local hold = redis.call('HMGET', KEYS[1], 'status', 'user_id', 'expires_at')
local status = hold[1]
if status and is_tombstone(hold[2]) then  -- ended with no payment, long ago (lua/_hold.lua)
  local ended = status == 'expired' and 'reservation_expired' or 'not_payable'
  return {cjson.encode({status = ended, booking_id = ARGV[1], current = status})}
end
if not status or hold[2] ~= ARGV[3] then
  return {cjson.encode({status = 'not_found', booking_id = ARGV[1]})}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {cjson.encode({status = 'payment_exists', booking = record(KEYS[1]), payment = record(KEYS[2])})}
end
local sale = redis.call('HMGET', KEYS[4], 'suspended', 'cancelled')
if sale[2] == '1' then
  return {cjson.encode({status = 'event_cancelled', booking_id = ARGV[1]})}
end
if sale[1] == '1' then
  return {cjson.encode({status = 'tenant_suspended', booking_id = ARGV[1]})}
end
if status == 'expired' then
  return {cjson.encode({status = 'reservation_expired', booking_id = ARGV[1]})}
end
if status ~= 'reserved' then
  return {cjson.encode({status = 'not_payable', booking_id = ARGV[1], current = status})}
end

local now = tonumber(ARGV[6])
if tonumber(hold[3]) <= now then
  return {cjson.encode({status = 'reservation_expired', booking_id = ARGV[1]})}
end

local paying_until = now + tonumber(ARGV[7])
redis.call('HSET', KEYS[2],
  'payment_id', ARGV[2], 'booking_id', ARGV[1], 'user_id', ARGV[3],
  'amount_cents', redis.call('HGET', KEYS[1], 'total_cents'), 'method', ARGV[4], 'masked', ARGV[5],
  'status', 'pending', 'attempts', 0, 'created_at', now, 'updated_at', now, 'version', 1)
redis.call('HSET', KEYS[1], 'status', 'paying', 'payment_id', ARGV[2], 'paying_until', paying_until)
bump(KEYS[1])
redis.call('ZADD', KEYS[3], paying_until, ARGV[1])
return {cjson.encode({status = 'paying', booking = record(KEYS[1]), payment = record(KEYS[2])})}
