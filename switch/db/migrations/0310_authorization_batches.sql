-- The authorization engine's set-based path (owner: switch/authorization, docs/authorization.md).
--
-- One call per batch per message class, one transaction, one commit:
--   auth_financial_batch  every 0200 of the batch: claim, card under lock, PIN tries, account,
--                         limits, ledger holds / transfers / reads, and the stored decision;
--   auth_advice_batch     every 0220/0420 of the batch: claim, original under lock, capture /
--                         release / correcting entry, and the stored answer;
--   auth_void             spec 5.6 / 10: record 91 and undo the request's effect atomically.
--
-- Lock order, everywhere: auth_messages keys (sorted) -> cards (by id) -> holds (by id) ->
-- customer accounts (by id) -> daily counters (by counter, day) -> ledger idempotency keys.
-- That is the ledger's own order with the authorization rows in front, so no two batches
-- can deadlock.

-- Cards: a version bumped whenever what the switch caches in memory changes (PIN data,
-- limits, expiry, account, PAN), and a NOTIFY so every process drops its copy at once.
ALTER TABLE cards ADD COLUMN IF NOT EXISTS version integer NOT NULL DEFAULT 1;

CREATE OR REPLACE FUNCTION cards_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.pin_verification IS DISTINCT FROM OLD.pin_verification
       OR NEW.limits IS DISTINCT FROM OLD.limits
       OR NEW.expiry IS DISTINCT FROM OLD.expiry
       OR NEW.account_id IS DISTINCT FROM OLD.account_id
       OR NEW.pan_hash IS DISTINCT FROM OLD.pan_hash THEN
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS cards_bump_version ON cards;
CREATE TRIGGER cards_bump_version BEFORE UPDATE ON cards
    FOR EACH ROW EXECUTE FUNCTION cards_bump_version();

CREATE OR REPLACE FUNCTION cards_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('atm_cards', OLD.pan_hash);
    ELSIF TG_OP = 'INSERT' OR NEW.version <> OLD.version OR NEW.status <> OLD.status THEN
        PERFORM pg_notify('atm_cards', NEW.pan_hash);
        IF TG_OP = 'UPDATE' AND NEW.pan_hash <> OLD.pan_hash THEN
            PERFORM pg_notify('atm_cards', OLD.pan_hash);
        END IF;
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS cards_notify ON cards;
CREATE TRIGGER cards_notify AFTER INSERT OR UPDATE OR DELETE ON cards
    FOR EACH ROW EXECUTE FUNCTION cards_notify();

-- Terminals and their keys: any change is announced (key exchange, `keys` CLI, disable).
CREATE OR REPLACE FUNCTION terminals_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('atm_terminals',
                      CASE WHEN TG_OP = 'DELETE' THEN OLD.terminal_id ELSE NEW.terminal_id END);
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS terminals_notify ON terminals;
CREATE TRIGGER terminals_notify AFTER INSERT OR UPDATE OR DELETE ON terminals
    FOR EACH ROW EXECUTE FUNCTION terminals_notify();
DROP TRIGGER IF EXISTS terminal_keys_notify ON terminal_keys;
CREATE TRIGGER terminal_keys_notify AFTER INSERT OR UPDATE OR DELETE ON terminal_keys
    FOR EACH ROW EXECUTE FUNCTION terminals_notify();

-- The stored decision of each message: a 0210/0230/0430 is a deterministic function of the
-- request and these columns (field 15 from created_at, 38 from id), so a repeat is rebuilt.
ALTER TABLE auth_messages
    ADD COLUMN IF NOT EXISTS token text,
    ADD COLUMN IF NOT EXISTS kind text,
    ADD COLUMN IF NOT EXISTS hold_id bigint,
    ADD COLUMN IF NOT EXISTS ledger_balance bigint,
    ADD COLUMN IF NOT EXISTS available_balance bigint,
    ADD COLUMN IF NOT EXISTS currency text,
    ADD COLUMN IF NOT EXISTS info jsonb,
    ADD COLUMN IF NOT EXISTS reversed_by text,
    -- For reports and reconciliation: field 37 of the message, field 90's original STAN and
    -- the 0420's reason (field 39).
    ADD COLUMN IF NOT EXISTS rrn text,
    ADD COLUMN IF NOT EXISTS original_stan text,
    ADD COLUMN IF NOT EXISTS reason text;
-- 'marker': a 0200 key reserved by a reversal that arrived before its original (spec 5.4):
-- the late original finds it and is declined 94. Reports skip these rows.
ALTER TABLE auth_messages DROP CONSTRAINT IF EXISTS auth_messages_state_check;
ALTER TABLE auth_messages ADD CONSTRAINT auth_messages_state_check
    CHECK (state IN ('pending', 'done', 'marker'));

-- Result row of the batch functions (one per request, in request order); chip_passed: the
-- 0210 carries an ARPC (section 11).
ALTER TABLE auth_messages ADD COLUMN IF NOT EXISTS chip_passed boolean NOT NULL DEFAULT false;
DROP TYPE IF EXISTS auth_result CASCADE;
CREATE TYPE auth_result AS (
    idx              integer,
    status           text,
    response_code    text,
    record_id        bigint,
    created_at       timestamptz,
    card_id          bigint,
    hold_id          bigint,
    ledger_balance   bigint,
    available        bigint,
    currency         text,
    info             jsonb,
    chip_passed      boolean
);


-- Ledger statuses as response codes: the only translation of ledger results (spec 6).
CREATE OR REPLACE FUNCTION auth_ledger_code(p_status text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_status
        WHEN 'approved' THEN '00'
        WHEN 'insufficient_funds' THEN '51'
        WHEN 'daily_amount_exceeded' THEN '61'
        WHEN 'daily_count_exceeded' THEN '65'
        WHEN 'account_not_active' THEN '57'
        WHEN 'currency_mismatch' THEN '12'
        WHEN 'idempotency_conflict' THEN '94'
        ELSE '96' END
$$;

-- A card is valid through the last day of its YYMM month; p_month is the received day's YYMM.
CREATE OR REPLACE FUNCTION auth_expired(p_expiry text, p_month integer) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_expiry IS NOT NULL AND p_expiry ~ '^[0-9]{4}$' AND p_expiry::integer < p_month
$$;
