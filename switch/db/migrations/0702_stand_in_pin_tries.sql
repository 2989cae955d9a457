-- Stand-in and reversals after a 91 (docs/networks.md, issue 21 failures 4 and 5).
-- Wrong PINs tried in stand-in, per card (keyed PAN hash, never the PAN) and UTC day: past the
-- network's stand_in_pin_tries_max the switch answers 75 without evaluating the PIN.
CREATE TABLE IF NOT EXISTS stand_in_pin_tries (
    pan_hash     text NOT NULL,
    day          date NOT NULL,
    wrong_tries  integer NOT NULL DEFAULT 0 CHECK (wrong_tries >= 0),
    PRIMARY KEY (pan_hash, day)
);
-- A stand-in decline (55, 75) is advised to the issuer like a stand-in approval.
ALTER TABLE network_advices DROP CONSTRAINT IF EXISTS network_advices_kind_check;
ALTER TABLE network_advices ADD CONSTRAINT network_advices_kind_check
    CHECK (kind IN ('completion', 'reversal', 'stand_in', 'stand_in_decline'));
-- 'stand_in_declined': declined by the switch in stand-in; 'reversed': approved by the network,
-- then reversed there because the terminal was answered something other than 00.
ALTER TABLE network_transactions DROP CONSTRAINT IF EXISTS network_transactions_state_check;
ALTER TABLE network_transactions ADD CONSTRAINT network_transactions_state_check
    CHECK (state IN ('pending', 'approved', 'declined', 'unanswered', 'stand_in',
                     'stand_in_declined', 'reversed'));
-- The sweep for approved network transactions whose terminal answer is not 00.
CREATE INDEX IF NOT EXISTS network_transactions_approved_idx
    ON network_transactions (created_at) WHERE state IN ('approved', 'stand_in');
