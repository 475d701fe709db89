--[[
voucher.lua: a compensation voucher's life (spec §2.2.3: "event cancelled by organizer: 100 % +
compensation"), in its tenant's slot: issued to one buyer when a cancelled event refunded them,
claimed for one of their bookings of the tenant's events, used when that booking is paid, or
released back to issued when the booking ends unpaid. Single-use, bound to the buyer.

A claim holds the voucher until `claim_until` (the booking's paying deadline at the latest): a
claim nobody released by then — its booking ended, the release lost, the gateway gone between
claiming and applying — is free again at the next claim. So a voucher is never stuck, and never
used twice: a booking cannot be paid after its claim ran out.

KEYS[1]  voucher  {tn:T}:voucher:<code>  hash  code, tenant_id, user_id, amount_cents, currency,
                                               status (issued | claimed | used), booking_id,
                                               claim_until (ms), from_booking, created_at,
                                               updated_at, version

ARGV[1]  op: issue | claim | release | use      ARGV[2]  now (ms)
ARGV[3]  user id (issue: to whom; claim: who claims)
ARGV[4]  booking id (claim, release, use: the booking it is for; issue: the refunded booking)
ARGV[5]  issue: amount in minor units; claim: claim_until (ms)
ARGV[6]  issue: currency     ARGV[7]  issue: tenant id

Returns {result_json}; result.status: issued | claimed | released | used | not_found (no such
voucher, or another buyer's: the same answer) | unavailable (claimed for another booking, or
used) | not_claimed (release or use of a claim it does not hold: nothing changes); with voucher
(the record) when there is one. Each op done again answers the same.
]]

--#include _hold

local function answer(status)
  local voucher = record(KEYS[1])
  return {cjson.encode({status = status, voucher = next(voucher) and voucher or nil})}
end

local op, now = ARGV[1], tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'status', 'user_id', 'booking_id', 'claim_until')

local function change(...)
  redis.call('HSET', KEYS[1], 'updated_at', now, ...)
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end

if op == 'issue' then
  if not v[1] then
    redis.call('HSET', KEYS[1], 'code', string.match(KEYS[1], ':voucher:(.+)$'), 'tenant_id', ARGV[7],
      'user_id', ARGV[3], 'amount_cents', ARGV[5], 'currency', ARGV[6], 'status', 'issued',
      'from_booking', ARGV[4], 'created_at', now, 'updated_at', now, 'version', 1)
  end
  return answer('issued')
end

if not v[1] or v[2] ~= ARGV[3] and op == 'claim' then
  return answer('not_found')
end

if op == 'claim' then
  if v[1] == 'used' then
    return {cjson.encode({status = 'unavailable', reason = 'used'})}
  end
  if v[1] == 'claimed' and v[3] ~= ARGV[4] and tonumber(v[4] or '0') > now then
    return {cjson.encode({status = 'unavailable', reason = 'claimed'})}
  end
  change('status', 'claimed', 'booking_id', ARGV[4], 'claim_until', ARGV[5])
  return answer('claimed')
end

if op == 'release' then
  if v[1] == 'claimed' and v[3] == ARGV[4] then
    change('status', 'issued', 'booking_id', '', 'claim_until', 0)
    return answer('released')
  end
  return answer(v[1] == 'issued' and 'released' or 'not_claimed')
end

if op == 'use' then
  if v[1] == 'used' and v[3] == ARGV[4] then
    return answer('used')
  end
  if v[1] == 'claimed' and v[3] == ARGV[4] then
    change('status', 'used')
    return answer('used')
  end
  return answer('not_claimed')
end

return redis.error_reply('unknown voucher op ' .. tostring(op))
