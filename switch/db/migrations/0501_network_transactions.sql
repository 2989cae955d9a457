-- Card networks (owner: switch/networks). One row per 0200 the switch sent (or meant to send)
-- to a card network, written before the first transmission so that a request whose answer was
-- lost (deadline, crash) can always be reversed at the network. No clear PAN: the LMK-encrypted
-- copy (for advices) and the masked form only; no PIN block, no track 2.
CREATE TABLE IF NOT EXISTS network_transactions (
    transaction_id     bigserial PRIMARY KEY,
    network            text NOT NULL,
    -- The terminal's message key (spec 5.5) of the 0200.
    terminal_id        text NOT NULL,
    stan               text NOT NULL,
    transmission_dt    text NOT NULL,
    acquirer_id        text NOT NULL,
    -- Field 7 as sent to the network (fixed before the first transmission).
    transmitted_at     timestamptz NOT NULL,
    pan_encrypted      text NOT NULL,
    pan_masked         text NOT NULL,
    expiry             text,
    processing_code    text NOT NULL,
    amount_minor       bigint NOT NULL CHECK (amount_minor >= 0),
    currency           text NOT NULL,
    from_account       text,
    to_account         text,
    acceptor           jsonb NOT NULL DEFAULT '{}'::jsonb,
    state              text NOT NULL DEFAULT 'pending'
                       CHECK (state IN ('pending', 'approved', 'declined', 'unanswered',
                                        'stand_in')),
    response_code      text,
    authorization_id   text,
    network_reference  text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    answered_at        timestamptz,
    UNIQUE (terminal_id, stan, transmission_dt, acquirer_id)
);
CREATE INDEX IF NOT EXISTS network_transactions_pending_idx
    ON network_transactions (created_at) WHERE state = 'pending';
