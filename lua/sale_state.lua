--[[
sale_state.lua: an event's sale is suspended (its tenant was suspended by a system admin) or
active again. Applied by a worker as a command from the reservations topic, in order with the
reserves of the event's shows: a reserve or payment applied after it is refused
(lua/reserve_seats.lua, lua/begin_payment.lua read `suspended`), one applied before keeps its
booking. Holds already made run out or are paid as usual; payments begun settle; refunds go on.

The event's waiting room, if it has one, closes and says why; on reactivation it goes back to the
mode it had. (The same mechanism an organizer's cancellation will use: `closed_reason`.)

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[1]  event meta  {ev:E}:meta          hash  max_per_user, ..., suspended ("1" while so)
KEYS[2]  room config {ev:E}:room:config   hash  mode, engaged, ...; here also mode_before_close,
                                                closed_reason

ARGV[1]  "suspended" or "active"   ARGV[2]  the reason said while closed (e.g. tenant_suspended)

Returns {result_json}: status (suspended, active), room (the room's mode now, or "none").
Applying it twice changes nothing the second time.
]]

local state, reason = ARGV[1], ARGV[2]
local mode = redis.call('HGET', KEYS[2], 'mode')
if state == 'suspended' then
  redis.call('HSET', KEYS[1], 'suspended', '1')
  if mode then
    if redis.call('HEXISTS', KEYS[2], 'mode_before_close') == 0 then
      redis.call('HSET', KEYS[2], 'mode_before_close', mode)
    end
    redis.call('HSET', KEYS[2], 'mode', 'closed', 'engaged', '1', 'closed_reason', reason)
    mode = 'closed'
  end
else
  redis.call('HDEL', KEYS[1], 'suspended')
  local before = redis.call('HGET', KEYS[2], 'mode_before_close')
  if before then
    -- Engaged as WaitingRoom.configure sets it; an auto room re-decides at its next tick.
    local engaged = (before == 'always' or before == 'paused' or before == 'closed') and '1' or '0'
    redis.call('HSET', KEYS[2], 'mode', before, 'engaged', engaged)
    redis.call('HDEL', KEYS[2], 'mode_before_close', 'closed_reason')
    mode = before
  end
end
return {cjson.encode({status = state, room = mode or 'none'})}
