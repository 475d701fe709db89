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
KEYS[6]  event meta          {ev:E}:meta                 hash  max_per_user
KEYS[7]  room's admitted     {ev:E}:room:admitted        zset  user -> active until (ms); a hold
                                                         keeps an admitted user active until it
                                                         expires (only raised, only if present)
KEYS[8]  user's bookings     {ev:E}:bookings:<user>      zset  booking id -> created at (ms)

ARGV[1]  body hash        ARGV[2]  now (ms)          ARGV[3]  deadline (ms)
ARGV[4]  quantity         ARGV[5]  booking id        ARGV[6]  user id
ARGV[7]  show id          ARGV[8]  zone id           ARGV[9]  hold duration (ms)
ARGV[10] idempotency record TTL (s)                  ARGV[11] request id
ARGV[12] default max seats per user (when the meta hash has none)
ARGV[13] idempotency scope (kept on the hold, with the body hash: every later event of the
         booking carries the whole record, so PostgreSQL can be written from any one of them)

Returns {result_json, replayed}: replayed is 1 when the idempotency record answered.
result.status is one of:
  reserved               booking_id, quantity, total_cents, expires_at, created_at, remaining, ...
  insufficient_stock     remaining
  max_per_user_exceeded  held, max_per_user
  unknown_zone           (the zone has no inventory in this Redis)
  idempotency_key_reused (same scope, different body; nothing stored)
  expired                (arrived after its deadline; not applied and not stored, so a retry
                          under the same key is judged afresh)
Order: idempotency record first (a redelivered command always gets its first answer), then the
deadline, then the zone, the per-user limit and availability.
]]

local record = redis.call('HMGET', KEYS[1], 'h', 'r')
if record[1] then
  if record[1] == ARGV[1] then
    return {record[2], 1}
  end
  return {cjson.encode({status = 'idempotency_key_reused'}), 0}
end

local now = tonumber(ARGV[2])
if now > tonumber(ARGV[3]) then
  return {cjson.encode({status = 'expired'}), 0}
end

local function answer(result)
  local json = cjson.encode(result)
  redis.call('HSET', KEYS[1], 'h', ARGV[1], 'r', json)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[10]))
  return {json, 0}
end

local quantity = tonumber(ARGV[4])
local zone = redis.call('HMGET', KEYS[2], 'available', 'price_cents')
local available = tonumber(zone[1])
if available == nil then
  return answer({status = 'unknown_zone'})
end

local held = tonumber(redis.call('GET', KEYS[3]) or '0')
local max_per_user = tonumber(redis.call('HGET', KEYS[6], 'max_per_user') or ARGV[12])
if held + quantity > max_per_user then
  return answer({status = 'max_per_user_exceeded', held = held, max_per_user = max_per_user})
end
if available < quantity then
  return answer({status = 'insufficient_stock', remaining = available})
end

local remaining = redis.call('HINCRBY', KEYS[2], 'available', -quantity)
redis.call('INCRBY', KEYS[3], quantity)
local expires_at = now + tonumber(ARGV[9])
local total_cents = quantity * tonumber(zone[2] or '0')
redis.call('HSET', KEYS[4],
  'status', 'reserved', 'user_id', ARGV[6], 'show_id', ARGV[7], 'zone_id', ARGV[8],
  'quantity', quantity, 'total_cents', total_cents, 'created_at', now,
  'expires_at', expires_at, 'request_id', ARGV[11], 'scope', ARGV[13] or '', 'body_hash', ARGV[1],
  'version', 1)
redis.call('ZADD', KEYS[5], expires_at, ARGV[5])
redis.call('ZADD', KEYS[7], 'XX', 'GT', expires_at, ARGV[6])
redis.call('ZADD', KEYS[8], now, ARGV[5])

return answer({
  status = 'reserved', booking_id = ARGV[5], user_id = ARGV[6], show_id = ARGV[7],
  zone_id = ARGV[8], quantity = quantity, total_cents = total_cents, remaining = remaining,
  created_at = now, expires_at = expires_at, request_id = ARGV[11],
})
