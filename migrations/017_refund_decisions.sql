-- A refund request reaches a person: an organizer or admin approves it or refuses it with a
-- reason (lua/refund_payment.lua's `refuse` step); the refusal is final.
ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_refund_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_refund_status_check
    CHECK (refund_status IN ('requested', 'approved', 'refunded', 'refused'));
-- The organizers' list of requests waiting for them.
CREATE INDEX IF NOT EXISTS payments_refunds_idx ON payments (event_id, refund_status, updated_at)
    WHERE refund_status IS NOT NULL;
