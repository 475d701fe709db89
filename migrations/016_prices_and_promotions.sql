-- Prices and promotions (spec §2.2.2): every event has a currency (its tenant's, unless said
-- otherwise), each booking keeps the price breakdown its reservation locked, and the rules and
-- promo codes applied in the sale Redis (lua/set_pricing.lua) are kept here from their events.
ALTER TABLE events ADD COLUMN IF NOT EXISTS currency text CHECK (currency ~ '^[A-Z]{3}$');
UPDATE events e SET currency = t.currency FROM tenants t WHERE t.id = e.tenant_id AND e.currency IS NULL;

CREATE OR REPLACE FUNCTION event_currency_from_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.currency IS NULL THEN
        SELECT currency INTO NEW.currency FROM tenants WHERE id = NEW.tenant_id;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS events_currency_from_tenant ON events;
CREATE TRIGGER events_currency_from_tenant BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION event_currency_from_tenant();
ALTER TABLE events ALTER COLUMN currency SET NOT NULL;

-- What the reservation locked (lua/_pricing.lua's breakdown); the early-bird places and the
-- promo code it took, which a release gives back.
ALTER TABLE bookings ADD COLUMN IF NOT EXISTS price_breakdown jsonb;
ALTER TABLE bookings ADD COLUMN IF NOT EXISTS promo_code text;
ALTER TABLE bookings ADD COLUMN IF NOT EXISTS early_bird_seats integer NOT NULL DEFAULT 0;
ALTER TABLE bookings ADD COLUMN IF NOT EXISTS currency text;
CREATE INDEX IF NOT EXISTS bookings_promo_idx ON bookings (event_id, promo_code) WHERE promo_code IS NOT NULL;

-- A promo code of an event, as its newest change left it (version: the event's pricing version).
CREATE TABLE IF NOT EXISTS promo_codes (
    event_id    uuid NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    code        text NOT NULL,
    definition  jsonb NOT NULL,
    status      text NOT NULL CHECK (status IN ('active', 'paused')),
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, code)
);

-- An event's other rules: a zone's early bird (scope = the zone id), the event's bundle tiers
-- (scope = 'event').
CREATE TABLE IF NOT EXISTS pricing_rules (
    event_id    uuid NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('early_bird', 'bundles')),
    scope       text NOT NULL,
    rule        jsonb NOT NULL,
    version     bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, kind, scope)
);
