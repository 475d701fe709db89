-- Categories belong to a tenant (spec §2.3: data isolated per tenant): an admin adds them to
-- their own tenant, events are filed under their own tenant's, and every new tenant starts with
-- the spec's three (§2.1.2). The categories there were (global, added by any tenant's admin) are
-- copied to every tenant, so none is lost, and each event moves to its own tenant's copy.
ALTER TABLE categories ADD COLUMN IF NOT EXISTS tenant_id uuid REFERENCES tenants(id);
ALTER TABLE categories DROP CONSTRAINT IF EXISTS categories_slug_key;

INSERT INTO categories (tenant_id, name, slug)
SELECT t.id, c.name, c.slug FROM tenants t CROSS JOIN categories c WHERE c.tenant_id IS NULL;

UPDATE events e SET category_id = mine.id
FROM categories shared, categories mine
WHERE e.category_id = shared.id AND shared.tenant_id IS NULL
  AND mine.tenant_id = e.tenant_id AND mine.slug = shared.slug;

DELETE FROM categories WHERE tenant_id IS NULL;
ALTER TABLE categories ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE categories ADD CONSTRAINT categories_tenant_slug_key UNIQUE (tenant_id, slug);

CREATE OR REPLACE FUNCTION seed_tenant_categories() RETURNS trigger AS $$
BEGIN
    INSERT INTO categories (tenant_id, name, slug) VALUES
        (NEW.id, 'Concert', 'concert'), (NEW.id, 'Sport', 'sport'), (NEW.id, 'Theater', 'theater')
    ON CONFLICT (tenant_id, slug) DO NOTHING;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS tenants_seed_categories ON tenants;
CREATE TRIGGER tenants_seed_categories AFTER INSERT ON tenants
    FOR EACH ROW EXECUTE FUNCTION seed_tenant_categories();
