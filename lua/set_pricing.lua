--[[
set_pricing.lua: an organizer's pricing rule or promo code change, applied in order with the
reservations (a reserve applied after it sees it; one applied before keeps its price).
Idempotent per command: a redelivery gets its first answer.

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.
lua/_pricing.lua documents the fields.

KEYS[1]  idempotency record  {ev:E}:idem:<organizer>:r:<request id>  hash  r = result JSON
KEYS[2]  promo codes         {ev:E}:promos                           hash  CODE -> JSON
KEYS[3]  event meta          {ev:E}:meta                             hash  bundles, pricing_version
KEYS[4]  zone                {ev:E}:zone:<show>:<zone>   (early_bird only)

ARGV[1]  what: promo (a new code) | promo_status (pause or resume one) | early_bird (set or
         end a zone's rule) | bundles (the event's tiers, replacing those there were)
ARGV[2]  the change, JSON:
           promo         the code's definition (lua/_pricing.lua)
           promo_status  {code, status: 'active' | 'paused'}
           early_bird    {show_id, zone_id, on, kind, value, until, seats}
           bundles       {tiers: [{min_quantity, percent, name}, ...]} (empty: none)
ARGV[3]  now (ms)   ARGV[4]  idempotency record TTL (s)

Returns {result_json, replayed}. result.status is one of:
  pricing_set      what, rule (as it now stands: a code with its status, a zone's early bird
                   with eb_taken, the tiers), version (the event's pricing version: each change
                   adds 1, so PostgreSQL keeps only the newest of a rule)
  promo_exists     a code of that name exists already in this event (nothing changed)
  promo_not_found  no such code
  unknown_zone     the zone has no inventory in this Redis
]]

local record = redis.call('HGET', KEYS[1], 'r')
if record then
  return {record, 1}
end

local function answer(result)
  local json = cjson.encode(result)
  redis.call('HSET', KEYS[1], 'r', json)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
  return {json, 0}
end

local what = ARGV[1]
local change = cjson.decode(ARGV[2])
local rule

if what == 'promo' then
  if redis.call('HEXISTS', KEYS[2], change.code) == 1 then
    return answer({status = 'promo_exists', code = change.code})
  end
  redis.call('HSET', KEYS[2], change.code, ARGV[2])
  rule = change
elseif what == 'promo_status' then
  local current = redis.call('HGET', KEYS[2], change.code)
  if not current then
    return answer({status = 'promo_not_found', code = change.code})
  end
  rule = cjson.decode(current)
  rule.status = change.status
  redis.call('HSET', KEYS[2], change.code, cjson.encode(rule))
elseif what == 'early_bird' then
  if redis.call('EXISTS', KEYS[4]) == 0 then
    return answer({status = 'unknown_zone'})
  end
  if change.on then
    redis.call('HSET', KEYS[4], 'eb_on', '1', 'eb_kind', change.kind, 'eb_value', change.value,
      'eb_until', change['until'], 'eb_seats', change.seats)
  else
    redis.call('HSET', KEYS[4], 'eb_on', '0')
  end
  local now_rule = redis.call('HMGET', KEYS[4], 'eb_on', 'eb_kind', 'eb_value', 'eb_until', 'eb_seats', 'eb_taken')
  rule = {show_id = change.show_id, zone_id = change.zone_id, on = now_rule[1] == '1', kind = now_rule[2],
          value = tonumber(now_rule[3]), ['until'] = tonumber(now_rule[4]), seats = tonumber(now_rule[5]),
          taken = tonumber(now_rule[6] or '0')}
elseif what == 'bundles' then
  if #change.tiers > 0 then
    redis.call('HSET', KEYS[3], 'bundles', cjson.encode(change.tiers))
  else
    redis.call('HDEL', KEYS[3], 'bundles')
  end
  rule = change
else
  return redis.error_reply('unknown pricing change ' .. tostring(what))
end

local version = redis.call('HINCRBY', KEYS[3], 'pricing_version', 1)
return answer({status = 'pricing_set', what = what, rule = rule, version = version, at = tonumber(ARGV[3])})
