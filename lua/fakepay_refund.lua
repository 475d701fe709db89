--[[
fakepay_refund.lua: the fake provider refunds (part of) a visible, successful charge, once per
refund id, never more in all than was charged. Runs on the aux Redis.

KEYS[1]  the charge hash (lua/fakepay_charge.lua; here also refunded_cents, the total refunded,
         and refund:<id>, each refund's amount)
ARGV[1]  amount in cents   ARGV[2]  now (ms)   ARGV[3]  TTL (s)
ARGV[4]  the refund's id ('' : the payment's first refund; a top-up has its own)

Returns {"refunded"|"already"|"not_refundable"|"too_large", reference, refunded_cents}
(already: that refund id's amount, refunded before; nothing more moves).
]]
local field = 'refund:' .. (ARGV[4] or '')
local found = redis.call('HMGET', KEYS[1], 'status', 'reference', 'amount_cents', 'registers_at_ms',
  'refunded_cents', field)
if not found[1] or found[1] ~= 'success' or tonumber(found[4]) > tonumber(ARGV[2]) then
  return {'not_refundable', found[2] or '', '0'}
end
if found[6] then
  return {'already', found[2], found[6]}
end
local total = tonumber(found[5] or '0')
if total + tonumber(ARGV[1]) > tonumber(found[3]) then
  return {'too_large', found[2], '0'}
end
redis.call('HSET', KEYS[1], field, ARGV[1], 'refunded_cents', total + tonumber(ARGV[1]), 'refunded_at_ms', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {'refunded', found[2], ARGV[1]}
