-- Core schema (spec §5.2): tenants, users, catalog, bookings, payments, audit log.
-- UUID keys everywhere (gen_random_uuid is built into PostgreSQL 13+).

CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    slug        text NOT NULL UNIQUE,
    settings    jsonb NOT NULL DEFAULT '{}'::jsonb,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES tenants(id),
    email          text NOT NULL,
    password_hash  text NOT NULL,
    full_name      text NOT NULL DEFAULT '',
    role           text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'organizer', 'admin')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, email)
);

CREATE TABLE categories (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    slug        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id            uuid NOT NULL REFERENCES tenants(id),
    organizer_id         uuid NOT NULL REFERENCES users(id),
    category_id          uuid REFERENCES categories(id),
    title                text NOT NULL,
    description          text NOT NULL DEFAULT '',
    venue                text NOT NULL DEFAULT '',
    status               text NOT NULL DEFAULT 'draft'
                         CHECK (status IN ('draft', 'published', 'cancelled')),
    max_tickets_per_user integer NOT NULL DEFAULT 4 CHECK (max_tickets_per_user > 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_tenant_idx ON events (tenant_id);

CREATE TABLE shows (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id         uuid NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    show_date        timestamptz NOT NULL,
    total_seats      integer NOT NULL DEFAULT 0 CHECK (total_seats >= 0),
    available_seats  integer NOT NULL DEFAULT 0 CHECK (available_seats >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shows_event_idx ON shows (event_id);

CREATE TABLE seat_zones (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    show_id          uuid NOT NULL REFERENCES shows(id) ON DELETE CASCADE,
    name             text NOT NULL,
    price            numeric(12, 2) NOT NULL CHECK (price >= 0),
    total_seats      integer NOT NULL CHECK (total_seats >= 0),
    available_seats  integer NOT NULL CHECK (available_seats >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (show_id, name)
);

CREATE TABLE bookings (
    id              uuid PRIMARY KEY,
    -- The command's idempotency scope (user + client key, or request id): one booking per scope.
    reservation_id  text NOT NULL UNIQUE,
    public_id       text NOT NULL UNIQUE,
    user_id         uuid NOT NULL REFERENCES users(id),
    event_id        uuid NOT NULL REFERENCES events(id),
    show_id         uuid NOT NULL REFERENCES shows(id),
    zone_id         uuid NOT NULL REFERENCES seat_zones(id),
    quantity        integer NOT NULL CHECK (quantity > 0),
    total_price     numeric(12, 2) NOT NULL,
    status          text NOT NULL DEFAULT 'reserved'
                    CHECK (status IN ('reserved', 'confirmed', 'cancelled', 'expired')),
    request_id      text NOT NULL,
    body_hash       text NOT NULL,
    reserved_at     timestamptz NOT NULL,
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bookings_user_idx ON bookings (user_id, created_at DESC);
CREATE INDEX bookings_show_idx ON bookings (show_id);
-- Only live holds can expire: keep the expiry scan index small.
CREATE INDEX bookings_expiry_idx ON bookings (expires_at) WHERE status = 'reserved';

CREATE TABLE payments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    booking_id  uuid NOT NULL REFERENCES bookings(id),
    amount      numeric(12, 2) NOT NULL CHECK (amount >= 0),
    method      text NOT NULL DEFAULT 'credit_card',
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'processing', 'success', 'failed', 'refunded')),
    provider_ref text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_booking_idx ON payments (booking_id);

CREATE TABLE audit_logs (
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id    uuid,
    actor_id     uuid,
    action       text NOT NULL,
    entity_type  text NOT NULL,
    entity_id    text NOT NULL,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX audit_logs_entity_idx ON audit_logs (entity_type, entity_id);

-- Monthly partitions: one for each month from 2025-01 through 2030-12, plus a default so an
-- insert outside that range never fails (a retention job will split and drop partitions).
DO $$
DECLARE
    month date := date '2025-01-01';
BEGIN
    WHILE month < date '2031-01-01' LOOP
        EXECUTE format(
            'CREATE TABLE audit_logs_%s PARTITION OF audit_logs FOR VALUES FROM (%L) TO (%L)',
            to_char(month, 'YYYY_MM'), month, month + interval '1 month');
        month := month + interval '1 month';
    END LOOP;
END $$;
CREATE TABLE audit_logs_default PARTITION OF audit_logs DEFAULT;

-- Catalog changes wake every gateway's per-process catalog cache.
CREATE FUNCTION notify_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('catalog_changed', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER events_catalog_changed AFTER INSERT OR UPDATE OR DELETE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
-- Not on available_seats updates: the persistence consumer writes those all the time.
CREATE TRIGGER shows_catalog_changed AFTER INSERT OR DELETE ON shows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
CREATE TRIGGER shows_catalog_date_changed AFTER UPDATE OF show_date, event_id ON shows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
CREATE TRIGGER zones_catalog_changed AFTER INSERT OR DELETE ON seat_zones
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
CREATE TRIGGER zones_catalog_price_changed AFTER UPDATE OF price, name ON seat_zones
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
