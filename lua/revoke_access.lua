--[[
revoke_access.lua: refuse a session's, a user's or a tenant's access tokens issued until now,
in every gateway process (gateway/revocations.py).

Runs on the aux Redis. One sorted set holds every revocation still in force: member "kind:id",
score the "not before" time in ms (a token issued at or before it is refused). Only a later time
replaces an earlier one, and what has outlived every access token is dropped here, so the set
holds the last quarter hour's revocations and no more. The announcement goes out in the same
call: a revocation is never stored without being told, nor told without being stored.

KEYS[1]    the set                       auth:revocations        zset  member -> ms

ARGV[1]    member ("session:<id>", "user:<id>" or "tenant:<id>")
ARGV[2]    not before (ms; the caller's clock)
ARGV[3]    retention (ms; an access token's lifetime and a margin for clocks)
ARGV[4]    channel the gateway processes listen on
ARGV[5]    announcement (JSON: member, at_ms)

Returns 1.
]]

redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (tonumber(ARGV[2]) - tonumber(ARGV[3])))
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
