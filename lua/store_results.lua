--[[
store_results.lua: store the answers of one worker batch for one event, each under its request's
result key with a TTL (what GET /bookings/requests/{id} reads after a 202).

One call per event per batch instead of one SET per request: the worker's cost is per command.
Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[i]    result key  {ev:E}:result:<request id>   string: the reply JSON
ARGV[1]    TTL in seconds
ARGV[i+1]  the reply JSON for KEYS[i]

Returns the number of keys written.
]]

local ttl = ARGV[1]
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[i + 1], 'EX', ttl)
end
return #KEYS
