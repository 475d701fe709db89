-- Bookings and payments by event, bookings by zone: the foreign keys to events and seat zones
-- are checked on every delete of a draft event (its shows and zones go with it), and the
-- archiver and ops tools read an event's bookings and payments. Without these, each was a scan
-- of the whole table: with 1.9 million bookings, deleting a draft took over 10 seconds.
CREATE INDEX IF NOT EXISTS bookings_event_idx ON bookings (event_id);
CREATE INDEX IF NOT EXISTS bookings_zone_idx ON bookings (zone_id);
CREATE INDEX IF NOT EXISTS payments_event_idx ON payments (event_id);
CREATE INDEX IF NOT EXISTS inventory_adjustments_zone_idx ON inventory_adjustments (zone_id);
