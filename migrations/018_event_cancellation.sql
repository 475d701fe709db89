-- An event cancelled by its organizer refunds every booking in full (spec §2.2.3): a booking its
-- buyer had refunded in part before gets a top-up, a second refund record on the same payment
-- (lua/refund_payment.lua step cancel), so the two never add up to more than was paid.
ALTER TABLE payments ADD COLUMN IF NOT EXISTS topup_status text CHECK (topup_status IN ('approved', 'refunded'));
ALTER TABLE payments ADD COLUMN IF NOT EXISTS topup_amount numeric(12, 2);
