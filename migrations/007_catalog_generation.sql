-- A catalog generation, bumped in the same transaction as every catalog change: cached event
-- lists and details are keyed by it, so a cache entry can never outlive the data it was built
-- from (a notification arrives after the commit; this number cannot be late).
CREATE TABLE catalog_state (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    generation  bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO catalog_state DEFAULT VALUES;

CREATE OR REPLACE FUNCTION notify_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_state SET generation = generation + 1, updated_at = now();
    PERFORM pg_notify('catalog_changed', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER categories_catalog_changed AFTER INSERT OR UPDATE OR DELETE ON categories
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
