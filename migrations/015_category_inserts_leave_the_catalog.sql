-- A category just added is in no event yet, so it changes no cached event list or detail: only
-- renaming or removing one can. Bumping the catalog generation on an insert made every gateway
-- process reload its catalog index for each new tenant (whose three categories a trigger adds,
-- migrations/014_categories_per_tenant.sql) and for each category an admin adds.
DROP TRIGGER IF EXISTS categories_catalog_changed ON categories;
CREATE TRIGGER categories_catalog_changed AFTER UPDATE OR DELETE ON categories
    FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed();
