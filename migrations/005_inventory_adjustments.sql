-- Seat-count changes applied from booking.events: one row per command, so a redelivered event
-- changes the counters once.
CREATE TABLE inventory_adjustments (
    request_id      text PRIMARY KEY,
    zone_id         uuid NOT NULL REFERENCES seat_zones(id) ON DELETE CASCADE,
    previous_total  integer NOT NULL,
    total           integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
