--[[
fakepay_refund.lua: the fake provider refunds a visible, successful, not yet refunded charge,
once. Runs on the aux Redis.

KEYS[1]  the charge hash (lua/fakepay_charge.lua)
ARGV[1]  amount in cents   ARGV[2]  now (ms)   ARGV[3]  TTL (s)

Returns {"refunded"|"already"|"not_refundable"|"too_large", reference, refunded_cents}.
]]
local found = redis.call('HMGET', KEYS[1], 'status', 'reference', 'amount_cents', 'registers_at_ms',
  'refunded_cents')
if not found[1] or found[1] ~= 'success' or tonumber(found[4]) > tonumber(ARGV[2]) then
  return {'not_refundable', found[2] or '', '0'}
end
if tonumber(found[5]) > 0 then
  return {'already', found[2], found[5]}
end
if tonumber(ARGV[1]) > tonumber(found[3]) then
  return {'too_large', found[2], '0'}
end
redis.call('HSET', KEYS[1], 'refunded_cents', ARGV[1], 'refunded_at_ms', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {'refunded', found[2], ARGV[1]}
