--[[
sale_state.lua: an event's sale is suspended (its tenant was suspended by a system admin), active
again, or cancelled (its organizer cancelled the event: for good). Applied by a worker as a
command from the reservations topic, in order with the reserves of the event's shows: a reserve
or payment applied after it is refused (lua/reserve_seats.lua, lua/begin_payment.lua read
`suspended` and `cancelled`), one applied before keeps its booking. While suspended, holds made
run out or are paid as usual, payments begun settle, refunds go on; a cancellation settles every
booking instead (workers/payments/cancellation.py, from the moment this applies).

The event's waiting room, if it has one, closes and says why (`closed_reason`); on reactivation it
goes back to the mode it had, unless the event was cancelled meanwhile (a cancelled event's room
stays closed, and keeps saying so).

Every key carries the event's hash tag {ev:<event_id>}, so the script runs on a Redis Cluster.

KEYS[1]  event meta  {ev:E}:meta          hash  max_per_user, ..., suspended ("1" while so),
                                                cancelled ("1" for good), cancelled_at (ms)
KEYS[2]  room config {ev:E}:room:config   hash  mode, engaged, ...; here also mode_before_close,
                                                closed_reason

ARGV[1]  "suspended", "active" or "cancelled"
ARGV[2]  the reason said while closed (tenant_suspended, event_cancelled)
ARGV[3]  now (ms)

Returns {result_json}: status (suspended, active, cancelled), room (the room's mode now, or
"none"), first (true when this command cancelled the event: a redelivered one finds it done),
cancelled_at. Applying it twice changes nothing the second time.
]]

local state, reason = ARGV[1], ARGV[2]
local mode = redis.call('HGET', KEYS[2], 'mode')
local cancelled = redis.call('HGET', KEYS[1], 'cancelled') == '1'

local function close_room()
  if mode then
    if redis.call('HEXISTS', KEYS[2], 'mode_before_close') == 0 then
      redis.call('HSET', KEYS[2], 'mode_before_close', mode)
    end
    redis.call('HSET', KEYS[2], 'mode', 'closed', 'engaged', '1', 'closed_reason', reason)
    mode = 'closed'
  end
end

local first = false
if state == 'cancelled' then
  if not cancelled then
    redis.call('HSET', KEYS[1], 'cancelled', '1', 'cancelled_at', ARGV[3] or '0')
    close_room()  -- the cancellation's reason wins over a suspension's
    first = true
  end
elseif state == 'suspended' then
  redis.call('HSET', KEYS[1], 'suspended', '1')
  if not cancelled then
    close_room()
  end
else
  redis.call('HDEL', KEYS[1], 'suspended')
  local before = redis.call('HGET', KEYS[2], 'mode_before_close')
  if before and not cancelled then
    -- Engaged as WaitingRoom.configure sets it; an auto room re-decides at its next tick.
    local engaged = (before == 'always' or before == 'paused' or before == 'closed') and '1' or '0'
    redis.call('HSET', KEYS[2], 'mode', before, 'engaged', engaged)
    redis.call('HDEL', KEYS[2], 'mode_before_close', 'closed_reason')
    mode = before
  end
end
return {cjson.encode({status = state, room = mode or 'none', first = first,
                      cancelled_at = tonumber(redis.call('HGET', KEYS[1], 'cancelled_at') or '0')})}
