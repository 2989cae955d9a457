-- Store-and-forward (owner: switch/networks): advices (0220/0420) owed to a card network,
-- repeated (0221/0421) until the network acknowledges them. At most one advice of each kind
-- per network transaction, so a terminal's repeated or second reversal is never sent twice.
CREATE TABLE IF NOT EXISTS network_advices (
    advice_id            bigserial PRIMARY KEY,
    transaction_id       bigint NOT NULL REFERENCES network_transactions ON DELETE CASCADE,
    network              text NOT NULL,
    kind                 text NOT NULL CHECK (kind IN ('completion', 'reversal', 'stand_in')),
    amount_minor         bigint NOT NULL CHECK (amount_minor >= 0),
    actual_amount_minor  bigint CHECK (actual_amount_minor >= 0),
    reason_code          text,
    state                text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'acknowledged')),
    -- Transmissions so far; the first is 0220/0420, every later one a repeat (0221/0421).
    attempts             integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at      timestamptz NOT NULL DEFAULT now(),
    last_error           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    acknowledged_at      timestamptz,
    UNIQUE (transaction_id, kind)
);
CREATE INDEX IF NOT EXISTS network_advices_due_idx
    ON network_advices (network, next_attempt_at, advice_id) WHERE state = 'queued';
