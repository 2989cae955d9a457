-- Authorization state (owner: switch/authorization). Every fact that decides an answer lives
-- here or in the ledger, never only in memory (spec 5.5, 5.6).

-- Issuer keys: LMK handles (TR-31 blocks under the LMK), e.g. the PIN verification key.
CREATE TABLE IF NOT EXISTS issuer_keys (
    name        text PRIMARY KEY,
    handle      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Cards. The PAN is never stored in clear: a keyed hash (LMK-derived) for lookup, an
-- LMK-encrypted copy, and the masked form (first 6 + last 4) for display.
CREATE TABLE IF NOT EXISTS cards (
    card_id           bigserial PRIMARY KEY,
    pan_hash          text NOT NULL UNIQUE,
    pan_encrypted     text NOT NULL,
    pan_masked        text NOT NULL,
    expiry            char(4) NOT NULL CHECK (expiry ~ '^[0-9]{4}$'),
    status            text NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'lost', 'stolen', 'closed', 'blocked')),
    account_id        text NOT NULL,
    pin_verification  jsonb NOT NULL,
    pin_tries         integer NOT NULL DEFAULT 0 CHECK (pin_tries >= 0),
    limits            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS cards_account_idx ON cards (account_id);

-- One row per financial message key (spec 5.5): (41, 11, 7, 32) scoped by message class.
-- 'pending' while being processed (a crash leaves it pending; it is resolved as 91 once
-- stale), 'done' once answered; the stored response is re-sent for repeats.
CREATE TABLE IF NOT EXISTS auth_messages (
    id                bigserial UNIQUE,
    message_class     text NOT NULL CHECK (message_class IN ('0200', '0220', '0420')),
    terminal_id       text NOT NULL,
    stan              text NOT NULL,
    transmission_dt   text NOT NULL,
    acquirer_id       text NOT NULL,
    fingerprint       text NOT NULL,
    state             text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    processing_code   text NOT NULL,
    amount_minor      bigint NOT NULL,
    card_id           bigint,
    response_code     text,
    response_fields   jsonb,
    -- 0200 only: what the approval did in the ledger, so advices can find it.
    effect            jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    answered_at       timestamptz,
    PRIMARY KEY (message_class, terminal_id, stan, transmission_dt, acquirer_id)
);
CREATE INDEX IF NOT EXISTS auth_messages_pending_idx ON auth_messages (created_at)
    WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS auth_messages_created_idx ON auth_messages (created_at);

-- Reversals whose original was unknown (spec 5.4): a later 0200 with the same 41 and the
-- original 11, 7 and 32 of field 90 is declined 94.
CREATE TABLE IF NOT EXISTS reversal_markers (
    terminal_id       text NOT NULL,
    stan              text NOT NULL,
    transmission_dt   text NOT NULL,
    acquirer_id       text NOT NULL,
    reversal_stan     text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (terminal_id, stan, transmission_dt, acquirer_id)
);

-- Every administrative action (issue 5 item 7): who, when, what, before/after.
CREATE TABLE IF NOT EXISTS audit_log (
    audit_id    bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    subject     text NOT NULL,
    before      jsonb,
    after       jsonb
);
CREATE INDEX IF NOT EXISTS audit_log_subject_idx ON audit_log (subject, at);
