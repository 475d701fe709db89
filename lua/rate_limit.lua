--[[
rate_limit.lua: take one token from a token bucket with burst (spec §8.4), atomically.

Runs on the aux Redis. A bucket holds at most `burst` tokens and gains `rate` tokens per
`window`; an empty bucket refuses. Idle buckets expire once they would be full again (a TTL is
fine here: it decides no seat and no money, only when a full bucket is forgotten).

KEYS[1]  bucket   rl:<policy>:<subject>   hash  tokens (float), at (ms of the last update)

ARGV[1]  burst (max tokens)     ARGV[2]  rate (tokens per window)   ARGV[3]  window (ms)
ARGV[4]  now (ms; the caller's clock, so tests drive time without sleeping)

Returns {allowed (1|0), remaining (whole tokens left), retry_after_ms (0 when allowed),
         reset_ms (ms until the bucket is full again)}
]]

local burst = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2]) / tonumber(ARGV[3])
local now = tonumber(ARGV[4])

local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil then
  tokens, at = burst, now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * per_ms)
else
  now = at  -- a caller's clock behind the last update: never refill backwards
end

local allowed = 0
local retry_after = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry_after = math.ceil((1 - tokens) / per_ms)
end

local reset = math.ceil((burst - tokens) / per_ms)
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.max(reset, 1))
return {allowed, math.floor(tokens), retry_after, reset}
