--[[
_hold.lua: shared by the scripts that change a booking (included where a script says
`--#include _hold`; lua/__init__.py splices it in before loading).

record(key)        the whole hash as a Lua table (field -> string): a hold or a payment
bump(key)          add 1 to the hash's `version`: every transition moves a booking or a
                   payment forward by one, so PostgreSQL can ignore anything older
release(zone, count, index, booking_id, quantity, hold, uses)
                   seats back to the zone, the user's count down (deleted at zero), the hold
                   out of the expiry index; what its price took given back (lua/_pricing.lua):
                   its early-bird places to the zone's eb_taken, its promo code's use and the
                   user's use of it to `uses` ({ev:E}:promo_uses). Called once per hold, by
                   the one transition that ends it; returns the zone's seats available after it
]]

local function record(key)
  local flat = redis.call('HGETALL', key)
  local out = {}
  for i = 1, #flat, 2 do
    out[flat[i]] = flat[i + 1]
  end
  return out
end

local function bump(key)
  return redis.call('HINCRBY', key, 'version', 1)
end

local function release(zone, count, index, booking_id, quantity, hold, uses)
  local remaining = redis.call('HINCRBY', zone, 'available', quantity)
  if redis.call('DECRBY', count, quantity) <= 0 then
    redis.call('DEL', count)
  end
  redis.call('ZREM', index, booking_id)
  local took = redis.call('HMGET', hold, 'eb_seats', 'promo_code', 'user_id')
  local places = tonumber(took[1] or '0')
  if places > 0 then
    redis.call('HINCRBY', zone, 'eb_taken', -places)
  end
  if took[2] and took[2] ~= '' then
    redis.call('HINCRBY', uses, took[2], -1)
    local mine = took[2] .. '|' .. took[3]
    if redis.call('HINCRBY', uses, mine, -1) <= 0 then
      redis.call('HDEL', uses, mine)
    end
  end
  return remaining
end

local function is_tombstone(user_id)
  return not user_id
end
