--[[
rate_limit.lua: take one token from each of several token buckets with burst (spec §8.4),
atomically, in one call (the gateway sends one call per event-loop iteration).

Runs on the aux Redis, a single instance: the keys of one call need not share a slot there.
A bucket holds at most `burst` tokens and gains `rate` tokens per window; an empty bucket
refuses. Idle buckets expire once they would be full again (a TTL is fine here: it decides no
seat and no money, only when a full bucket is forgotten).

KEYS[i]    bucket i   <namespace>:<policy>:<subject>   hash  tokens (float), at (ms)

ARGV[1]    now (ms; the caller's clock, so tests drive time without sleeping)
ARGV[2]    window (ms)
ARGV[1+2i] burst of bucket i      ARGV[2+2i] rate of bucket i (tokens per window)

Returns a flat list, four numbers per bucket in KEYS order: allowed (1|0), remaining (whole
tokens left), retry_after_ms (0 when allowed), reset_ms (ms until the bucket is full again).
]]

local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local out = {}

for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[1 + 2 * i])
  local per_ms = tonumber(ARGV[2 + 2 * i]) / window
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(state[1])
  local at = tonumber(state[2])
  local t = now
  if tokens == nil then
    tokens, at = burst, now
  end
  if t > at then
    tokens = math.min(burst, tokens + (t - at) * per_ms)
  else
    t = at  -- a caller's clock behind the last update: never refill backwards
  end
  local allowed, retry_after = 0, 0
  if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
  else
    retry_after = math.ceil((1 - tokens) / per_ms)
  end
  local reset = math.ceil((burst - tokens) / per_ms)
  redis.call('HSET', key, 'tokens', tostring(tokens), 'at', t)
  redis.call('PEXPIRE', key, math.max(reset, 1))
  out[#out + 1] = allowed
  out[#out + 1] = math.floor(tokens)
  out[#out + 1] = retry_after
  out[#out + 1] = reset
end
return out
