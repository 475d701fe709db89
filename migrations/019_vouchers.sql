-- Compensation vouchers (spec §2.2.3: an event cancelled by its organizer refunds 100 % plus a
-- compensation): the tenant's percentage lives in tenants.settings
-- (cancellation_compensation_percent); each voucher is kept here from its voucher.changed events,
-- newest version wins (the sale Redis's {tn:T}:voucher:<code> is the live truth).
CREATE TABLE IF NOT EXISTS vouchers (
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    code          text NOT NULL,
    user_id       uuid NOT NULL REFERENCES users(id),
    amount        numeric(12, 2) NOT NULL CHECK (amount >= 0),
    currency      text NOT NULL,
    status        text NOT NULL CHECK (status IN ('issued', 'claimed', 'used')),
    booking_id    text,
    from_booking  text NOT NULL,
    version       integer NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, code)
);
CREATE INDEX IF NOT EXISTS vouchers_user_idx ON vouchers (user_id);
