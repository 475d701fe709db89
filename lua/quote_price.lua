--[[
quote_price.lua: what a booking would cost now, deciding nothing (the booking page's quote).
The same pricing as lua/reserve_seats.lua (both include lua/_pricing.lua), read only: no early-bird
place nor code use is taken, so a reserve a moment later may price differently if others took
them meanwhile. It writes nothing.

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[1]  zone             {ev:E}:zone:<show>:<zone>   hash  available, price_cents, eb_*
KEYS[2]  event meta       {ev:E}:meta                 hash  bundles
KEYS[3]  promo codes      {ev:E}:promos               hash
KEYS[4]  promo code uses  {ev:E}:promo_uses           hash

ARGV[1]  quantity   ARGV[2]  now (ms)   ARGV[3]  show id   ARGV[4]  zone id
ARGV[5]  promo code, upper case ('' : none)   ARGV[6]  user id   ARGV[7]  currency

Returns {result_json}; result.status is one of:
  quote         pricing (lua/_pricing.lua's breakdown), available (the zone's seats now)
  unknown_zone  the zone has no inventory in this Redis
  promo_*       the refusals of lua/_pricing.lua
]]

--#include _pricing

local zone = redis.call('HMGET', KEYS[1], 'available', unpack(ZONE_PRICING_FIELDS))
if not zone[1] then
  return {cjson.encode({status = 'unknown_zone'})}
end
local code = ARGV[5]
local promo_json, uses, user_uses = promo_state(KEYS[3], KEYS[4], code, ARGV[6])
local pricing, refusal = price({select(2, unpack(zone))}, redis.call('HGET', KEYS[2], 'bundles') or nil, code,
                               promo_json, uses, user_uses, tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3],
                               ARGV[4], ARGV[7])
if refusal then
  return {cjson.encode(refusal)}
end
return {cjson.encode({status = 'quote', pricing = pricing, available = tonumber(zone[1])})}
