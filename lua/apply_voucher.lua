--[[
apply_voucher.lua: a claimed compensation voucher (lua/voucher.lua) taken off a reservation, in
the event's slot. Only a `reserved` hold of the voucher's buyer, still within its time, takes it:
one whose payment began is refused (a claim racing the start of payment loses, and the caller
releases the claim). The voucher applies last in the pricing order (lua/_pricing.lua), never
below zero; the hold's total is what the payment then charges.

KEYS[1]  hold  {ev:E}:hold:<booking id>  hash  (lua/reserve_seats.lua; here also voucher_code,
                                                voucher_cents, voucher_tenant)

ARGV[1]  booking id   ARGV[2]  user id   ARGV[3]  voucher code   ARGV[4]  its amount (minor units)
ARGV[5]  now (ms)     ARGV[6]  the voucher's tenant id

Returns {result_json}; result.status: voucher_applied (booking: the hold after it; applying the
same code again answers the same) | not_applicable (current: why; nothing changed).
]]

--#include _hold

local hold = redis.call('HMGET', KEYS[1], 'status', 'user_id', 'expires_at', 'voucher_code', 'total_cents',
                        'pricing')
if not hold[1] or hold[2] ~= ARGV[2] then
  return {cjson.encode({status = 'not_applicable', current = 'no such booking'})}
end
if hold[4] then
  if hold[4] == ARGV[3] then
    return {cjson.encode({status = 'voucher_applied', booking = record(KEYS[1])})}
  end
  return {cjson.encode({status = 'not_applicable', current = 'another voucher is applied'})}
end
if hold[1] ~= 'reserved' or tonumber(hold[3]) <= tonumber(ARGV[5]) then
  return {cjson.encode({status = 'not_applicable', current = hold[1] == 'reserved' and 'expired' or hold[1]})}
end
local total = tonumber(hold[5])
local off = math.min(total, tonumber(ARGV[4]))
local fields = {'total_cents', total - off, 'voucher_code', ARGV[3], 'voucher_cents', off, 'voucher_tenant', ARGV[6]}
if hold[6] then
  local pricing = cjson.decode(hold[6])
  if type(pricing.discounts) ~= 'table' or (next(pricing.discounts) == nil) then
    pricing.discounts = {}
  end
  pricing.discounts[#pricing.discounts + 1] = {kind = 'voucher', name = 'Voucher', code = ARGV[3], amount_cents = off}
  pricing.total_cents = total - off
  fields[#fields + 1] = 'pricing'
  fields[#fields + 1] = cjson.encode(pricing)
end
redis.call('HSET', KEYS[1], unpack(fields))
bump(KEYS[1])
return {cjson.encode({status = 'voucher_applied', booking = record(KEYS[1])})}
