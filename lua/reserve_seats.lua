--[[
reserve_seats.lua: hold `quantity` seats of one zone for one user, atomically and idempotently.

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[1]  idempotency record  {ev:E}:idem:<user>:<scope>  hash  h = body hash, r = result JSON
                                                         (scope: "k:<client key>" or "r:<request id>")
KEYS[2]  zone                {ev:E}:zone:<show>:<zone>   hash  available, total, price_cents
KEYS[3]  per-user count      {ev:E}:user:<user>          string: seats held or bought in the event
                                                         (no TTL: lowered by expire/cancel/refund)
KEYS[4]  hold                {ev:E}:hold:<booking id>    hash  status, user_id, show_id, zone_id,
                                                         quantity, total_cents, created_at,
                                                         expires_at, request_id, scope, body_hash,
                                                         version (1 here; every transition adds 1)
KEYS[5]  expiry index        {ev:E}:expiry               zset  booking id -> expires_at (ms)
KEYS[6]  event meta          {ev:E}:meta                 hash  max_per_user, suspended, cancelled
KEYS[7]  room's admitted     {ev:E}:room:admitted        zset  user -> active until (ms); a hold
                                                         keeps an admitted user active until it
                                                         expires (only raised, only if present)
KEYS[8]  user's bookings     {ev:E}:bookings:<user>      zset  booking id -> created at (ms)
KEYS[9]  promo codes         {ev:E}:promos               hash  (lua/_pricing.lua)
KEYS[10] promo code uses     {ev:E}:promo_uses           hash  (lua/_pricing.lua)

ARGV[1]  body hash        ARGV[2]  now (ms)          ARGV[3]  deadline (ms)
ARGV[4]  quantity         ARGV[5]  booking id        ARGV[6]  user id
ARGV[7]  show id          ARGV[8]  zone id           ARGV[9]  hold duration (ms)
ARGV[10] a success's idempotency record TTL (s): as long as a client may retry under its key
                                                     ARGV[11] request id
ARGV[12] default max seats per user (when the meta hash has none)
ARGV[13] idempotency scope (kept on the hold, with the body hash: every later event of the
         booking carries the whole record, so PostgreSQL can be written from any one of them)
ARGV[14] a refusal's idempotency record TTL (s), at least: the deadline window plus how long a
         command can sit unconsumed. The record lives at least until the command's deadline
         whatever this says, so a redelivery is never judged afresh while it could still apply
         (past the deadline it is answered "expired" and changes nothing).
ARGV[15] promo code, upper case ('' : none)   ARGV[16] the event's currency (ISO 4217)

The price is decided here, with the seats (lua/_pricing.lua): the early-bird places and the
code's use are taken in the same step, so the last early-bird place and a code's last use go to
exactly one buyer. The hold keeps what it got (pricing: the breakdown as JSON, total_cents,
eb_seats, promo_code, currency): a rule changed or ended later never reprices it.

Returns {result_json, replayed}: replayed is 1 when the idempotency record answered.
result.status is one of:
  reserved               booking_id, quantity, total_cents, pricing, expires_at, created_at,
                         remaining, ...
  insufficient_stock     remaining
  max_per_user_exceeded  held, max_per_user
  unknown_zone           (the zone has no inventory in this Redis)
  tenant_suspended       (the event's tenant is suspended: lua/sale_state.lua)
  event_cancelled        (its organizer cancelled the event: lua/sale_state.lua)
  promo_invalid, promo_expired, promo_not_applicable, promo_used_up, promo_user_limit
                         (lua/_pricing.lua; nothing taken, the refusal recorded like any other)
  idempotency_key_reused (same scope, different body; nothing stored)
  expired                (arrived after its deadline; not applied and not stored, so a retry
                          under the same key is judged afresh)
  booking_ended          current: the booking this very command made has ended and was trimmed
                          to a tombstone (lua/trim_hold.lua); only once its record has expired
Order: idempotency record first (a redelivered command always gets its first answer), then the
booking this command made (KEYS[4]: the booking id is the command's own, so after the success
record's TTL a redelivery is answered from the hold, never "expired" over seats it holds), then
the deadline, then the zone, the sale's state, the per-user limit, availability and the code.
]]

--#include _pricing

local record = redis.call('HMGET', KEYS[1], 'h', 'r')
if record[1] then
  if record[1] == ARGV[1] then
    return {record[2], 1}
  end
  return {cjson.encode({status = 'idempotency_key_reused'}), 0}
end

local made = redis.call('HMGET', KEYS[4], 'status', 'user_id', 'show_id', 'zone_id', 'quantity',
                       'total_cents', 'created_at', 'expires_at', 'request_id', 'pricing')
if made[1] then
  if not made[2] then  -- a tombstone (lua/trim_hold.lua)
    return {cjson.encode({status = 'booking_ended', booking_id = ARGV[5], current = made[1]}), 1}
  end
  return {cjson.encode({
    status = 'reserved', booking_id = ARGV[5], user_id = made[2], show_id = made[3],
    zone_id = made[4], quantity = tonumber(made[5]), total_cents = tonumber(made[6]),
    -- The first answer's count is gone with its record: the zone's count now.
    remaining = tonumber(redis.call('HGET', KEYS[2], 'available') or '0'),
    created_at = tonumber(made[7]), expires_at = tonumber(made[8]), request_id = made[9],
    pricing = made[10] and cjson.decode(made[10]) or nil,
  }), 1}
end

local now = tonumber(ARGV[2])
local deadline = tonumber(ARGV[3])
if now > deadline then
  return {cjson.encode({status = 'expired'}), 0}
end

local function answer(result)
  local json = cjson.encode(result)
  local ttl = tonumber(ARGV[10])
  if result.status ~= 'reserved' then
    ttl = math.max(tonumber(ARGV[14] or ARGV[10]), math.ceil((deadline - now) / 1000) + 1)
  end
  redis.call('HSET', KEYS[1], 'h', ARGV[1], 'r', json)
  redis.call('EXPIRE', KEYS[1], ttl)
  return {json, 0}
end

local quantity = tonumber(ARGV[4])
local zone = redis.call('HMGET', KEYS[2], 'available', unpack(ZONE_PRICING_FIELDS))
local available = tonumber(zone[1])
if available == nil then
  return answer({status = 'unknown_zone'})
end

local meta = redis.call('HMGET', KEYS[6], 'max_per_user', 'suspended', 'bundles', 'cancelled')
if meta[4] == '1' then  -- its organizer cancelled it (lua/sale_state.lua)
  return answer({status = 'event_cancelled'})
end
if meta[2] == '1' then  -- its tenant is suspended (lua/sale_state.lua)
  return answer({status = 'tenant_suspended'})
end
local held = tonumber(redis.call('GET', KEYS[3]) or '0')
local max_per_user = tonumber(meta[1] or ARGV[12])
if held + quantity > max_per_user then
  return answer({status = 'max_per_user_exceeded', held = held, max_per_user = max_per_user})
end
if available < quantity then
  return answer({status = 'insufficient_stock', remaining = available})
end

local code = ARGV[15] or ''
local promo_json, uses, user_uses = promo_state(KEYS[9], KEYS[10], code, ARGV[6])
local pricing, refusal = price({select(2, unpack(zone))}, meta[3] or nil, code, promo_json, uses, user_uses,
                               quantity, now, ARGV[7], ARGV[8], ARGV[16] or '')
if refusal then
  return answer(refusal)
end

local remaining = redis.call('HINCRBY', KEYS[2], 'available', -quantity)
redis.call('INCRBY', KEYS[3], quantity)
if pricing.early_bird_seats > 0 then
  redis.call('HINCRBY', KEYS[2], 'eb_taken', pricing.early_bird_seats)
end
if code ~= '' then
  redis.call('HINCRBY', KEYS[10], code, 1)
  redis.call('HINCRBY', KEYS[10], code .. '|' .. ARGV[6], 1)
end
local expires_at = now + tonumber(ARGV[9])
local total_cents = pricing.total_cents
redis.call('HSET', KEYS[4],
  'status', 'reserved', 'user_id', ARGV[6], 'show_id', ARGV[7], 'zone_id', ARGV[8],
  'quantity', quantity, 'total_cents', total_cents, 'created_at', now,
  'expires_at', expires_at, 'request_id', ARGV[11], 'scope', ARGV[13] or '', 'body_hash', ARGV[1],
  'pricing', cjson.encode(pricing), 'eb_seats', pricing.early_bird_seats, 'promo_code', code,
  'currency', ARGV[16] or '', 'version', 1)
redis.call('ZADD', KEYS[5], expires_at, ARGV[5])
redis.call('ZADD', KEYS[7], 'XX', 'GT', expires_at, ARGV[6])
redis.call('ZADD', KEYS[8], now, ARGV[5])

return answer({
  status = 'reserved', booking_id = ARGV[5], user_id = ARGV[6], show_id = ARGV[7],
  zone_id = ARGV[8], quantity = quantity, total_cents = total_cents, remaining = remaining,
  created_at = now, expires_at = expires_at, request_id = ARGV[11], pricing = pricing,
})
