-- The System Admin of spec §1: outside every tenant (users.tenant_id is null for that role alone),
-- creating tenants and inviting each one's first admin. A tenant says its currency and time zone.
ALTER TABLE users ALTER COLUMN tenant_id DROP NOT NULL;
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('user', 'organizer', 'admin', 'system_admin'));
ALTER TABLE users ADD CONSTRAINT users_tenant_unless_system_admin
    CHECK ((role = 'system_admin') = (tenant_id IS NULL));
-- UNIQUE (tenant_id, email) does not hold among nulls: system admins' addresses are unique too.
CREATE UNIQUE INDEX IF NOT EXISTS users_system_admin_email_idx ON users (email) WHERE tenant_id IS NULL;

ALTER TABLE tenants ADD COLUMN IF NOT EXISTS currency text NOT NULL DEFAULT 'THB'
    CHECK (currency ~ '^[A-Z]{3}$');
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS time_zone text NOT NULL DEFAULT 'Asia/Bangkok';

-- A single-use link that lets a new tenant's first admin set a password (stored as its digest).
CREATE TABLE IF NOT EXISTS tenant_invitations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    email       text NOT NULL,
    token_hash  text NOT NULL UNIQUE,
    invited_by  uuid REFERENCES users(id),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tenant_invitations_tenant_idx ON tenant_invitations (tenant_id);
