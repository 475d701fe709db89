-- The spec's event categories (§2.1.2); admins add more through the API.
INSERT INTO categories (name, slug) VALUES
    ('Concert', 'concert'), ('Sport', 'sport'), ('Theater', 'theater')
ON CONFLICT (slug) DO NOTHING;
