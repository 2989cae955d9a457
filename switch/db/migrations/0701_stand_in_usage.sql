-- Stand-in per-card daily limits (issue 11 item 2): a keyed hash of the PAN (HMAC under the
-- LMK, never the PAN) on each network transaction, so the day's stand-in approvals of one card
-- can be counted without decrypting anything.
ALTER TABLE network_transactions ADD COLUMN IF NOT EXISTS pan_hash text;
CREATE INDEX IF NOT EXISTS network_transactions_stand_in_idx
    ON network_transactions (pan_hash, created_at) WHERE state = 'stand_in';
