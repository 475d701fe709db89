--[[
adjust_zone.lua: change a zone's seat count during a sale, atomically with every reservation,
so it can never make availability negative nor sell a seat twice. Idempotent per command.

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[1]  idempotency record  {ev:E}:idem:<organizer>:r:<request id>  hash  r = result JSON
KEYS[2]  zone                {ev:E}:zone:<show>:<zone>               hash  available, total, ...

ARGV[1]  the new total seat count      ARGV[2]  idempotency record TTL (s)

Returns {result_json, replayed}. result.status is one of:
  adjusted     total, available, previous_total, taken (held or sold seats, unchanged)
  below_taken  taken, total: the new total would be less than the seats already held or sold
  unknown_zone the zone has no inventory in this Redis (the event is not on sale)
A redelivered command gets its first result (so its event can be re-emitted unchanged).
]]

local record = redis.call('HGET', KEYS[1], 'r')
if record then
  return {record, 1}
end

local function answer(result)
  local json = cjson.encode(result)
  redis.call('HSET', KEYS[1], 'r', json)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
  return {json, 0}
end

local zone = redis.call('HMGET', KEYS[2], 'available', 'total')
local available, total = tonumber(zone[1]), tonumber(zone[2])
if available == nil or total == nil then
  return answer({status = 'unknown_zone'})
end
local taken = total - available
local new_total = tonumber(ARGV[1])
if new_total < taken then
  return answer({status = 'below_taken', taken = taken, total = total})
end
redis.call('HSET', KEYS[2], 'total', new_total, 'available', new_total - taken)
return answer({status = 'adjusted', total = new_total, available = new_total - taken,
               previous_total = total, taken = taken})
