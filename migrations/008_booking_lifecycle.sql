-- The booking lifecycle (reserved -> paying -> confirmed, with cancelled, expired, refunded) and
-- its payments, written from booking.events. Every event carries the whole record and a version
-- that only moves forward, so whichever event arrives (late, twice, out of order) the row keeps
-- the newest state.
ALTER TABLE bookings DROP CONSTRAINT bookings_status_check;
ALTER TABLE bookings ADD CONSTRAINT bookings_status_check
    CHECK (status IN ('reserved', 'paying', 'confirmed', 'cancelled', 'expired', 'refunded'));
ALTER TABLE bookings
    ADD COLUMN version        integer NOT NULL DEFAULT 1,
    ADD COLUMN payment_id     text,
    ADD COLUMN cancel_reason  text,
    ADD COLUMN confirmed_at   timestamptz,
    ADD COLUMN ticket_code    text UNIQUE;

ALTER TABLE payments
    ADD COLUMN public_id       text UNIQUE,
    ADD COLUMN event_id        uuid REFERENCES events(id),
    ADD COLUMN masked          text NOT NULL DEFAULT '',
    ADD COLUMN failure_reason  text,
    ADD COLUMN attempts        integer NOT NULL DEFAULT 0,
    ADD COLUMN refund_status   text CHECK (refund_status IN ('requested', 'approved', 'refunded')),
    ADD COLUMN refund_percent  integer,
    ADD COLUMN refund_amount   numeric(12, 2),
    ADD COLUMN refund_reason   text,
    ADD COLUMN version         integer NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX payments_one_per_booking ON payments (booking_id);
