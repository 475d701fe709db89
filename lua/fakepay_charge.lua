--[[
fakepay_charge.lua: the fake payment provider's bank (workers/payment_provider.py): count a
charge attempt, then register the proposed outcome unless the key already has one, so two
concurrent charges of one key register once. Runs on the aux Redis.

KEYS[1]  the charge  fakepay:<namespace>:charge:<key>  hash  status, reference, reason,
                                                              amount_cents, method,
                                                              registers_at_ms, refunded_cents,
                                                              attempts
ARGV[1] status  ARGV[2] reference  ARGV[3] reason  ARGV[4] amount_cents  ARGV[5] method
ARGV[6] registers_at_ms (the charge is visible from then on)
ARGV[7] "1": refuse the first attempt (a transient error)   ARGV[8] TTL (s)

Returns {"registered"|"existing"|"unavailable", status, reference, reason, registers_at_ms,
refunded_cents}.
]]
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('EXPIRE', KEYS[1], ARGV[8])
local found = redis.call('HMGET', KEYS[1], 'status', 'reference', 'reason', 'registers_at_ms',
  'refunded_cents')
if found[1] then
  return {'existing', found[1], found[2] or '', found[3] or '', found[4] or '0', found[5] or '0'}
end
if ARGV[7] == '1' and attempts == 1 then
  return {'unavailable', '', '', '', '0', '0'}
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'reference', ARGV[2], 'reason', ARGV[3],
  'amount_cents', ARGV[4], 'method', ARGV[5], 'registers_at_ms', ARGV[6], 'refunded_cents', '0')
return {'registered', ARGV[1], ARGV[2], ARGV[3], ARGV[6], '0'}
