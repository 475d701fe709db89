-- The newest inventory load applied to each event's seats in the sale Redis: the catalog
-- generation its load_inventory command carried (lua/load_inventory.lua applies prices and the
-- per-user limit only from a load at least that new). The persistence consumer records it from
-- inventory.loaded events; ops.rebuild restores it with the zones, so a load that arrives late
-- never overrides newer prices. No foreign key: a record of an event deleted since is harmless.
CREATE TABLE inventory_loads (
    event_id    uuid PRIMARY KEY,
    version     bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
