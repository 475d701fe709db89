--[[
refund_payment.lua: a refund, one step at a time (spec §2.1.5: request -> approve -> process).

  request   the owner asks: the payment succeeded and its booking is confirmed; records the
            share (percent, amount in cents) the gateway computed from the event's date
  approve   an organizer or admin approves a requested refund
  refuse    an organizer or admin refuses it, with a reason (final: it cannot be asked again)
  cancel    the event was cancelled (workers/payments/cancellation.py): the whole amount goes
            back. Not refunded yet (nothing asked, a request pending — superseded — or refused):
            approved for 100 %. Refunded in part already (the buyer's earlier 50 %): a top-up,
            a second refund record on the payment for the rest, so the two never come to more
            than was paid. An earlier approval still at the provider: refund_in_flight (asked
            again once it completed).
  complete_topup  the provider refunded the top-up (the seats went back with the first refund:
            nothing else moves)
  complete  the provider refunded it: payment refunded; a confirmed booking -> refunded, its
            seats back on sale and the user's count lowered, exactly once
Each step done again answers as the first time (refund_exists for a second request).

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[1]  hold  KEYS[2]  payment  KEYS[3]  zone  KEYS[4]  per-user count  KEYS[5]  expiry index
KEYS[6]  promo code uses
(as in lua/settle_payment.lua)

ARGV[1]  booking id   ARGV[2]  payment id   ARGV[3]  step: request | approve | complete
ARGV[4]  now (ms)     ARGV[5]  requesting user id (request)
ARGV[6]  refund percent (request)   ARGV[7]  refund amount in cents (request)
ARGV[8]  provider's refund reference (complete, complete_topup)   ARGV[9]  the reason (refuse)

Returns {result_json}; result.status: refund_requested | refund_approved | refund_refused |
refunded | refund_exists | refund_in_flight | topup_approved | topped_up | not_refundable
(current: why) | not_found; with booking and payment (records).
]]

--#include _hold

local payment = redis.call('HMGET', KEYS[2], 'status', 'booking_id', 'user_id', 'refund_status')
if not payment[1] or payment[2] ~= ARGV[1] then
  return {cjson.encode({status = 'not_found', payment_id = ARGV[2]})}
end

local function answer(status, extra)
  local out = {status = status, booking = record(KEYS[1]), payment = record(KEYS[2])}
  for k, v in pairs(extra or {}) do out[k] = v end
  return {cjson.encode(out)}
end

local now = tonumber(ARGV[4])
local step = ARGV[3]
local refund = payment[4]

if step == 'request' then
  if payment[3] ~= ARGV[5] then
    return {cjson.encode({status = 'not_found', payment_id = ARGV[2]})}
  end
  if refund then
    return answer('refund_exists')
  end
  local hold_status = redis.call('HGET', KEYS[1], 'status')
  if payment[1] ~= 'success' or hold_status ~= 'confirmed' then
    return answer('not_refundable', {current = payment[1] ~= 'success' and payment[1] or hold_status})
  end
  redis.call('HSET', KEYS[2], 'refund_status', 'requested', 'refund_percent', ARGV[6],
    'refund_cents', ARGV[7], 'refund_reason', 'requested', 'refund_requested_at', now, 'updated_at', now)
  bump(KEYS[2])
  return answer('refund_requested')
end

if step == 'approve' then
  if refund == 'requested' then
    redis.call('HSET', KEYS[2], 'refund_status', 'approved', 'refund_approved_at', now, 'updated_at', now)
    bump(KEYS[2])
    return answer('refund_approved')
  end
  if refund == 'approved' or refund == 'refunded' then
    return answer('refund_approved')
  end
  return answer('not_refundable', {current = 'no refund requested'})
end

if step == 'refuse' then
  if refund == 'requested' then
    redis.call('HSET', KEYS[2], 'refund_status', 'refused', 'refund_reason', ARGV[9],
      'refund_refused_at', now, 'updated_at', now)
    bump(KEYS[2])
    return answer('refund_refused')
  end
  if refund == 'refused' then
    return answer('refund_refused')
  end
  return answer('not_refundable', {current = refund and ('refund ' .. refund) or 'no refund requested'})
end

if step == 'cancel' then
  local p = redis.call('HMGET', KEYS[2], 'amount_cents', 'refund_cents', 'topup_status', 'refund_reason')
  local amount, refunded_cents = tonumber(p[1] or '0'), tonumber(p[2] or '0')
  if payment[1] == 'refunded' then
    if p[3] then
      return answer(p[3] == 'refunded' and 'topped_up' or 'topup_approved')
    end
    if refunded_cents >= amount then
      return answer('refunded')
    end
    redis.call('HSET', KEYS[2], 'topup_status', 'approved', 'topup_cents', amount - refunded_cents,
      'topup_reason', 'event_cancelled', 'topup_approved_at', now, 'updated_at', now)
    bump(KEYS[2])
    return answer('topup_approved')
  end
  if payment[1] ~= 'success' then
    return answer('not_refundable', {current = payment[1]})
  end
  if refund == 'approved' then
    return answer(p[4] == 'event_cancelled' and 'refund_approved' or 'refund_in_flight')
  end
  if refund == 'requested' then
    redis.call('HSET', KEYS[2], 'refund_superseded', '1')  -- the buyer's own request, replaced
  end
  redis.call('HSET', KEYS[2], 'refund_status', 'approved', 'refund_percent', 100, 'refund_cents', amount,
    'refund_reason', 'event_cancelled', 'refund_approved_at', now, 'updated_at', now)
  bump(KEYS[2])
  return answer('refund_approved')
end

if step == 'complete_topup' then
  local topup = redis.call('HGET', KEYS[2], 'topup_status')
  if topup == 'refunded' then
    return answer('topped_up')
  end
  if topup ~= 'approved' then
    return answer('not_refundable', {current = 'no top-up approved'})
  end
  redis.call('HSET', KEYS[2], 'topup_status', 'refunded', 'topup_ref', ARGV[8], 'topup_refunded_at', now,
    'updated_at', now)
  bump(KEYS[2])
  return answer('topped_up')
end

if step == 'complete' then
  if refund == 'refunded' then
    return answer('refunded')
  end
  if refund ~= 'approved' then
    return answer('not_refundable', {current = refund or 'no refund requested'})
  end
  redis.call('HSET', KEYS[2], 'refund_status', 'refunded', 'status', 'refunded', 'refund_ref', ARGV[8],
    'refunded_at', now, 'updated_at', now)
  bump(KEYS[2])
  local hold = redis.call('HMGET', KEYS[1], 'status', 'quantity')
  if hold[1] == 'confirmed' then
    local remaining = release(KEYS[3], KEYS[4], KEYS[5], ARGV[1], tonumber(hold[2]), KEYS[1], KEYS[6])
    redis.call('HSET', KEYS[1], 'status', 'refunded', 'refunded_at', now, 'remaining_after', remaining)
    bump(KEYS[1])
  end
  return answer('refunded')
end

return redis.error_reply('unknown refund step ' .. tostring(step))
