-- Events whose sale state left the sale Redis (workers/archiver.py): written in the same
-- transaction as whatever PostgreSQL lacked of the event, before any key is removed. From then
-- on ops.rebuild never brings the event back and ops.reconcile reports it as archived; an
-- archiver that crashed halfway finds the row and finishes removing the keys.
CREATE TABLE event_archives (
    event_id     uuid PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
    archived_at  timestamptz NOT NULL DEFAULT now(),
    bookings     integer NOT NULL,  -- holds (tombstones included) in the sale Redis then
    payments     integer NOT NULL,
    written      integer NOT NULL   -- records PostgreSQL lacked, written by the archiver
);
