-- Ledger schema (owner: ledger_adapter). Double entry in bigint minor units.
--
-- Customer accounts keep balance/held/pending_credit in their row, changed only under a row
-- lock taken in account-id order. Every other kind (ATM cash, settlement, opening equity) is
-- a hot position written as append-only legs: its balance is the sum of its legs, so
-- thousands of transactions per second never queue on its row.

CREATE TABLE IF NOT EXISTS ledger_accounts (
    account_id      text PRIMARY KEY CHECK (length(account_id) BETWEEN 1 AND 64),
    name            text NOT NULL,
    currency        text NOT NULL CHECK (currency ~ '^[0-9]{3}$'),
    kind            text NOT NULL DEFAULT 'customer'
                    CHECK (kind IN ('customer', 'cash', 'settlement', 'system')),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'closed')),
    balance         bigint NOT NULL DEFAULT 0,
    held            bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
    pending_credit  bigint NOT NULL DEFAULT 0 CHECK (pending_credit >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'customer' OR (balance = 0 AND held = 0 AND pending_credit = 0))
) WITH (fillfactor = 80);  -- room on the page keeps balance updates HOT (no index writes)

-- One journal entry per money movement; its legs (at least two) sum to zero.
CREATE TABLE IF NOT EXISTS ledger_entries (
    entry_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('opening', 'capture', 'expiry', 'transfer', 'reversal')),
    hold_id         bigint,
    -- A correcting entry that took an account below zero available: listed for reconciliation.
    reconciliation  boolean NOT NULL DEFAULT false,
    posted_at       timestamptz NOT NULL DEFAULT now()
);

-- Append-only: amount > 0 is a credit to the account, < 0 a debit.
CREATE TABLE IF NOT EXISTS ledger_legs (
    leg_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id     bigint NOT NULL,
    account_id   text NOT NULL,
    amount       bigint NOT NULL CHECK (amount <> 0),
    description  text NOT NULL,
    posted_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ledger_legs_account_idx ON ledger_legs (account_id, leg_id);
CREATE INDEX IF NOT EXISTS ledger_legs_entry_idx ON ledger_legs (entry_id);

-- The second check of "legs sum to zero" (the first is in ledger_post): every INSERT
-- statement into ledger_legs must carry whole, balanced entries.
CREATE OR REPLACE FUNCTION ledger_legs_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_legs GROUP BY entry_id HAVING sum(amount) <> 0 OR count(*) < 2) THEN
        RAISE EXCEPTION 'ledger: journal entry legs do not sum to zero' USING ERRCODE = 'LD002';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_legs_balanced AFTER INSERT ON ledger_legs
    REFERENCING NEW TABLE AS new_legs FOR EACH STATEMENT EXECUTE FUNCTION ledger_legs_balanced();

CREATE OR REPLACE FUNCTION ledger_legs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger: legs are append-only' USING ERRCODE = 'LD002';
END $$;
CREATE TRIGGER ledger_legs_append_only BEFORE UPDATE OR DELETE ON ledger_legs
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_legs_append_only();

CREATE SEQUENCE IF NOT EXISTS ledger_hold_ids;

-- A hold reserves money (debit: withdrawal) or announces a pending credit (credit: deposit)
-- until captured, released or expired. A transfer is stored as an already-captured debit
-- hold (counterparty = the payee) so a reversal can find it by id.
CREATE TABLE IF NOT EXISTS ledger_holds (
    hold_id          bigint PRIMARY KEY DEFAULT nextval('ledger_hold_ids'),
    kind             text NOT NULL CHECK (kind IN ('hold', 'transfer')),
    account_id       text NOT NULL,
    counterparty_id  text NOT NULL,
    direction        text NOT NULL CHECK (direction IN ('debit', 'credit')),
    amount           bigint NOT NULL CHECK (amount > 0),
    state            text NOT NULL CHECK (state IN ('open', 'captured', 'released')),
    captured_amount  bigint NOT NULL DEFAULT 0,
    reversed_amount  bigint NOT NULL DEFAULT 0,
    expires_at       timestamptz,
    expiry_action    text CHECK (expiry_action IN ('capture', 'release')),
    -- Daily limit counter this hold counts toward, and what it still counts.
    counter_id       text,
    counter_day      date,
    counted_amount   bigint NOT NULL DEFAULT 0 CHECK (counted_amount >= 0),
    counted          boolean NOT NULL DEFAULT false,
    -- Resolved by the sweeper as "presumed dispensed"; listed for reconciliation.
    presumed         boolean NOT NULL DEFAULT false,
    reconciliation   boolean NOT NULL DEFAULT false,
    description      text,
    reference        jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz,
    CHECK (0 <= reversed_amount AND reversed_amount <= captured_amount AND captured_amount <= amount),
    CHECK (state <> 'open' OR captured_amount = 0),
    CHECK (kind = 'transfer' OR (expires_at IS NOT NULL AND expiry_action IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS ledger_holds_expiry_idx ON ledger_holds (expires_at) WHERE state = 'open';
CREATE INDEX IF NOT EXISTS ledger_holds_reconciliation_idx ON ledger_holds (hold_id)
    WHERE reconciliation;

-- One row per idempotency key, holding the first result. operation 'void' marks a key
-- burnt by release_by_key before any hold was placed under it (spec 5.6).
CREATE TABLE IF NOT EXISTS ledger_idempotency (
    key             text PRIMARY KEY,
    operation       text NOT NULL,
    fingerprint     text NOT NULL,
    status          text NOT NULL,
    hold_id         bigint,
    amount_a        bigint,
    amount_b        bigint,
    flag            boolean,
    ledger_balance  bigint,
    held            bigint,
    pending_credit  bigint,
    created_at      timestamptz NOT NULL DEFAULT now()
);
-- For purging old keys; BRIN because keys arrive in time order and it costs ~nothing to keep.
CREATE INDEX IF NOT EXISTS ledger_idempotency_created_idx ON ledger_idempotency USING brin (created_at);

-- Daily limits (spec 6), one row per card and UTC day, changed in the same transaction as
-- the hold that counts toward it, under a row lock taken in (counter_id, day) order.
CREATE TABLE IF NOT EXISTS ledger_daily_counters (
    counter_id  text NOT NULL,
    day         date NOT NULL,
    amount      bigint NOT NULL DEFAULT 0 CHECK (amount >= 0),
    count       bigint NOT NULL DEFAULT 0 CHECK (count >= 0),
    PRIMARY KEY (counter_id, day)
) WITH (fillfactor = 80);

-- The row every batch function returns per request, also what a repeat gets back.
CREATE TYPE ledger_result AS (
    idx             integer,
    status          text,
    hold_id         bigint,
    amount_a        bigint,
    amount_b        bigint,
    flag            boolean,
    ledger_balance  bigint,
    held            bigint,
    pending_credit  bigint
);
