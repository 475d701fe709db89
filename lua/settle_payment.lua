--[[
settle_payment.lua: the provider's outcome of a booking's payment, applied once.

  processing  pending -> processing (an attempt at the provider begins; attempts + 1)
  success     payment success; a paying hold of this payment -> confirmed (out of the expiry
              index: a sold seat never comes back by itself). If the hold was released before
              the money arrived, the payment is marked for a full refund instead (late_success).
  failed      payment failed; a paying hold of this payment -> cancelled (cancel_reason
              payment_failed): seats and the user's count return exactly once.
A success never turns into a failure or back: once settled, the script only repeats its first
answer (a redelivered command re-emits the same events, and the consumers are idempotent). The
one exception: a payment failed as `payment_timeout` (the provider knew of no charge when the
paying deadline passed) that the provider later reports successful becomes late_success.

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[1]  hold            {ev:E}:hold:<booking id>     hash  (lua/begin_payment.lua)
KEYS[2]  payment         {ev:E}:payment:<payment id>  hash  (lua/begin_payment.lua; here also
                                                            provider_ref, failure_reason,
                                                            settled_at, settle_result, refund_*)
KEYS[3]  zone            {ev:E}:zone:<show>:<zone>    hash  available, ...
KEYS[4]  per-user count  {ev:E}:user:<user>           string
KEYS[5]  expiry index    {ev:E}:expiry                zset
KEYS[6]  promo code uses  {ev:E}:promo_uses            hash  (lua/_pricing.lua): given back

ARGV[1]  booking id   ARGV[2]  payment id   ARGV[3]  outcome: processing | success | failed
ARGV[4]  now (ms)     ARGV[5]  provider reference ('' if none)   ARGV[6]  failure reason ('')
ARGV[7]  e-ticket code for a confirmation (random, made by the payment worker; the first one
         stays: a redelivery carries the same command)

Returns {result_json}; result.status: processing | confirmed | late_success | payment_failed |
settled (a processing step after the outcome) | not_found; with booking and payment (records).
]]

--#include _hold

local payment = redis.call('HMGET', KEYS[2], 'status', 'booking_id', 'settle_result', 'failure_reason')
if not payment[1] or payment[2] ~= ARGV[1] then
  return {cjson.encode({status = 'not_found', payment_id = ARGV[2]})}
end

local function answer(status)
  return {cjson.encode({status = status, booking = record(KEYS[1]), payment = record(KEYS[2])})}
end

local now = tonumber(ARGV[4])
local outcome = ARGV[3]
-- Failed only because nobody heard back by the deadline, and then the money did arrive: that
-- is the one way a settled payment moves on (to a success refunded in full).
local heard_late = payment[3] == 'payment_failed' and payment[4] == 'payment_timeout'
  and outcome == 'success'
if payment[3] and not heard_late then
  return answer(outcome == 'processing' and 'settled' or payment[3])
end
if outcome == 'processing' then
  redis.call('HSET', KEYS[2], 'status', 'processing', 'updated_at', now)
  redis.call('HINCRBY', KEYS[2], 'attempts', 1)
  bump(KEYS[2])
  return answer('processing')
end

local hold = redis.call('HMGET', KEYS[1], 'status', 'payment_id', 'quantity')
local holding = hold[1] == 'paying' and hold[2] == ARGV[2]
local result
if outcome == 'success' then
  redis.call('HSET', KEYS[2], 'status', 'success', 'provider_ref', ARGV[5])
  if holding then
    redis.call('HSET', KEYS[1], 'status', 'confirmed', 'confirmed_at', now, 'ticket_code', ARGV[7])
    bump(KEYS[1])
    redis.call('ZREM', KEYS[5], ARGV[1])
    result = 'confirmed'
  else
    -- The seats went back before the money came: give it all back, no approval needed.
    redis.call('HSET', KEYS[2], 'refund_status', 'approved', 'refund_reason', 'late_payment',
      'refund_percent', 100, 'refund_cents', redis.call('HGET', KEYS[2], 'amount_cents'),
      'refund_requested_at', now)
    result = 'late_success'
  end
elseif outcome == 'failed' then
  redis.call('HSET', KEYS[2], 'status', 'failed', 'failure_reason', ARGV[6])
  if holding then
    local remaining = release(KEYS[3], KEYS[4], KEYS[5], ARGV[1], tonumber(hold[3]), KEYS[1], KEYS[6])
    redis.call('HSET', KEYS[1], 'status', 'cancelled', 'cancel_reason', 'payment_failed',
      'cancelled_at', now, 'remaining_after', remaining)
    bump(KEYS[1])
  end
  result = 'payment_failed'
else
  return redis.error_reply('unknown outcome ' .. tostring(outcome))
end
redis.call('HSET', KEYS[2], 'settle_result', result, 'settled_at', now, 'updated_at', now)
bump(KEYS[2])
return answer(result)
