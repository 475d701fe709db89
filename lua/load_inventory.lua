--[[
load_inventory.lua: put a published event's zones on sale, or refresh their prices and the
event's per-user limit. A seat counter that exists is never overwritten (re-loading during a sale
must not resurrect sold seats; a zone's total, once on sale, changes only through adjust_zone.lua).
Prices and the limit are written only by the newest load: `version` is the catalog generation
PostgreSQL gave the edit, so two edits applied out of order leave the later one's values. A load
without a version (the tools' direct load) always writes them, and records no version.

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.
(The global set of live events, keys.LIVE_EVENTS, is another slot: the caller adds the event.)

KEYS[1]     idempotency record  {ev:E}:idem:<organizer>:r:<request id>  hash  r = result JSON
KEYS[2]     event meta          {ev:E}:meta                             hash  max_per_user,
                                                                              inventory_version
KEYS[3]     zone index          {ev:E}:zones                            set of zone keys
KEYS[4..]   one zone each       {ev:E}:zone:<show>:<zone>               hash  available, total,
                                                                              price_cents

ARGV[1]  version (catalog generation; "" none)     ARGV[2]  max tickets per user
ARGV[3]  idempotency record TTL (s); 0: no record (a direct load: the seed, tests)
ARGV[4..] per zone, in KEYS order: total seats, price in cents (two values each)

Returns {result_json, replayed}. result.status is one of:
  loaded   created (zone counters created by this load), zones (zones named)
  stale    the same, but a newer load's prices and limit were kept
A redelivered command gets its first result (so its event can be re-emitted unchanged).
]]

local ttl = tonumber(ARGV[3])
if ttl > 0 then
  local record = redis.call('HGET', KEYS[1], 'r')
  if record then
    return {record, 1}
  end
end

local version = tonumber(ARGV[1])
local loaded = tonumber(redis.call('HGET', KEYS[2], 'inventory_version'))
local newest = version == nil or loaded == nil or version >= loaded

local created = 0
for i = 4, #KEYS do
  local total = ARGV[4 + (i - 4) * 2]
  local price_cents = ARGV[5 + (i - 4) * 2]
  created = created + redis.call('HSETNX', KEYS[i], 'available', total)
  redis.call('HSETNX', KEYS[i], 'total', total)
  if newest then
    redis.call('HSET', KEYS[i], 'price_cents', price_cents)
  end
  -- The admitter sums these for "seats available" and "sold out" without asking PostgreSQL.
  redis.call('SADD', KEYS[3], KEYS[i])
end
if newest then
  redis.call('HSET', KEYS[2], 'max_per_user', ARGV[2])
  if version then
    redis.call('HSET', KEYS[2], 'inventory_version', version)
  end
end

local json = cjson.encode({status = newest and 'loaded' or 'stale', created = created,
                           zones = #KEYS - 3})
if ttl > 0 then
  redis.call('HSET', KEYS[1], 'r', json)
  redis.call('EXPIRE', KEYS[1], ttl)
end
return {json, 0}
