--[[
_pricing.lua: what a booking costs (spec §2.2.2), shared by lua/reserve_seats.lua (which then
takes the early-bird places and the code's use) and lua/quote_price.lua (which decides nothing).
Included where a script says `--#include _pricing`.

The rules live in the event's slot:
  zone hash  {ev:E}:zone:<show>:<zone>  price_cents, and the early bird when there is one:
             eb_on ('1' while the rule runs), eb_kind ('price' | 'percent'), eb_value (a seat's
             price in minor units, or the percentage off), eb_until (ms; 0: no time limit),
             eb_seats (the first N seats; 0: no count limit), eb_taken (places held or sold)
  meta hash  {ev:E}:meta  bundles: JSON [{min_quantity, percent, name}, ...] ("buy N or more,
             X % off"; the largest tier the quantity reaches applies)
  {ev:E}:promos      hash  CODE -> JSON {code, kind ('percent' | 'amount'), value, starts_at,
                           ends_at (ms; 0: open), show_id, zone_id ('' : any), max_uses,
                           per_user (0: no limit), min_quantity, status ('active' | 'paused'),
                           name}
  {ev:E}:promo_uses  hash  CODE -> uses; CODE|<user id> -> that user's uses (holds and sales:
                           a released booking gives its use back, lua/_hold.lua)

Stacking, one order everywhere: the early bird sets the seat price (the first places up to N at
the early-bird price, the rest at the list price: a line each); the bundle applies to that
subtotal; one promo code applies last; never below zero. Rounding: integer minor units, once
per discount line, half up (a percentage of an amount a: floor((a * p + 50) / 100)).

promo_state(promos_key, uses_key, code, user_id) -> promo_json | nil, uses, user_uses

price(zone, meta_bundles, code, promo_json, uses, user_uses, q, now, show_id, zone_id, currency)
  zone: {price_cents, eb_on, eb_kind, eb_value, eb_until, eb_seats, eb_taken} (strings, HMGET)
  Returns (breakdown, nil) or (nil, refusal): refusal is a status table,
    promo_invalid        no such code, or paused
    promo_expired        before starts_at or from ends_at on (starts_at, ends_at)
    promo_not_applicable reason: 'show' | 'zone' | 'min_quantity' (min_quantity)
    promo_used_up        max_uses reached
    promo_user_limit     per_user reached for this user
  breakdown: {currency, list_price_cents, quantity, lines = [{kind, quantity, unit_cents,
    amount_cents}], gross_cents, discounts = [{kind, name, code?, percent?, amount_cents}],
    total_cents, early_bird_seats, promo_code}
  (Redis's cjson writes an empty table as {}: readers take a `discounts` that is not a list as
  none, booking_rush.contract.pricing.)
]]

local ZONE_PRICING_FIELDS = {'price_cents', 'eb_on', 'eb_kind', 'eb_value', 'eb_until', 'eb_seats', 'eb_taken'}

-- The code's definition (nil when there is none) and its uses, all and `user_id`'s.
local function promo_state(promos_key, uses_key, code, user_id)
  if code == '' then
    return nil, 0, 0
  end
  local counts = redis.call('HMGET', uses_key, code, code .. '|' .. user_id)
  return redis.call('HGET', promos_key, code) or nil, tonumber(counts[1] or '0'), tonumber(counts[2] or '0')
end

local function percent_of(amount, percent)
  return math.floor((amount * percent + 50) / 100)
end

-- How many of `quantity` seats get the early bird now, and at what price each.
local function early_bird(zone, list_price, quantity, now)
  if zone[2] ~= '1' then
    return 0, list_price
  end
  local until_ms = tonumber(zone[5] or '0')
  if until_ms > 0 and now >= until_ms then
    return 0, list_price
  end
  local places = quantity
  local limit = tonumber(zone[6] or '0')
  if limit > 0 then
    places = math.max(0, math.min(quantity, limit - tonumber(zone[7] or '0')))
  end
  local value = tonumber(zone[4] or '0')
  local unit = zone[3] == 'percent' and (list_price - percent_of(list_price, value)) or math.min(value, list_price)
  return places, unit
end

local function promo_refusal(promo, uses, user_uses, quantity, now, show_id, zone_id)
  if not promo or promo.status ~= 'active' then
    return {status = 'promo_invalid'}
  end
  if (promo.starts_at > 0 and now < promo.starts_at) or (promo.ends_at > 0 and now >= promo.ends_at) then
    return {status = 'promo_expired', starts_at = promo.starts_at, ends_at = promo.ends_at}
  end
  if promo.show_id ~= '' and promo.show_id ~= show_id then
    return {status = 'promo_not_applicable', reason = 'show'}
  end
  if promo.zone_id ~= '' and promo.zone_id ~= zone_id then
    return {status = 'promo_not_applicable', reason = 'zone'}
  end
  if quantity < promo.min_quantity then
    return {status = 'promo_not_applicable', reason = 'min_quantity', min_quantity = promo.min_quantity}
  end
  if promo.max_uses > 0 and uses >= promo.max_uses then
    return {status = 'promo_used_up'}
  end
  if promo.per_user > 0 and user_uses >= promo.per_user then
    return {status = 'promo_user_limit', per_user = promo.per_user}
  end
  return nil
end

local function price(zone, bundles_json, code, promo_json, uses, user_uses, quantity, now, show_id, zone_id,
                     currency)
  local promo = nil
  if code ~= '' then
    promo = promo_json and cjson.decode(promo_json) or nil
    local refusal = promo_refusal(promo, uses, user_uses, quantity, now, show_id, zone_id)
    if refusal then
      return nil, refusal
    end
  end
  local list_price = tonumber(zone[1] or '0')
  local eb_seats, eb_unit = early_bird(zone, list_price, quantity, now)
  local lines = {}
  if eb_seats > 0 then
    lines[#lines + 1] = {kind = 'early_bird', quantity = eb_seats, unit_cents = eb_unit,
                         amount_cents = eb_seats * eb_unit}
  end
  if quantity > eb_seats then
    lines[#lines + 1] = {kind = 'list', quantity = quantity - eb_seats, unit_cents = list_price,
                         amount_cents = (quantity - eb_seats) * list_price}
  end
  local gross = quantity * list_price
  local discounts = {}
  local total = gross
  if eb_seats > 0 and eb_unit < list_price then
    local off = eb_seats * (list_price - eb_unit)
    discounts[#discounts + 1] = {kind = 'early_bird', name = 'Early bird', amount_cents = off}
    total = total - off
  end
  if bundles_json then
    local best = nil
    for _, tier in ipairs(cjson.decode(bundles_json)) do
      if quantity >= tier.min_quantity and (not best or tier.min_quantity > best.min_quantity) then
        best = tier
      end
    end
    if best then
      local off = math.min(total, percent_of(total, best.percent))
      discounts[#discounts + 1] = {kind = 'bundle', name = best.name, percent = best.percent, amount_cents = off}
      total = total - off
    end
  end
  if promo then
    local off = promo.kind == 'percent' and percent_of(total, promo.value) or promo.value
    off = math.min(total, off)
    discounts[#discounts + 1] = {kind = 'promo', name = promo.name, code = promo.code,
                                 percent = promo.kind == 'percent' and promo.value or nil, amount_cents = off}
    total = total - off
  end
  return {
    currency = currency, list_price_cents = list_price, quantity = quantity, lines = lines,
    gross_cents = gross, discounts = discounts, total_cents = total, early_bird_seats = eb_seats,
    promo_code = promo and promo.code or '',
  }, nil
end
