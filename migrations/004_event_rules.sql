-- Per-event rules (spec §2.2.1): booking closes a while before each show; a minimum age.
ALTER TABLE events
    ADD COLUMN booking_window_minutes integer NOT NULL DEFAULT 60 CHECK (booking_window_minutes >= 0),
    ADD COLUMN min_age integer CHECK (min_age BETWEEN 1 AND 99);
ALTER TABLE users ADD COLUMN birth_date date;

-- The gateways' catalog caches hold these rules: changing them is a catalog change.
CREATE TRIGGER events_rules_changed AFTER UPDATE OF booking_window_minutes, min_age ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
