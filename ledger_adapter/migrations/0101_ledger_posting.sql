-- Ledger building blocks (owner: ledger_adapter): posting, idempotency records, closing a
-- hold, daily counters, opening accounts. Callers hold the row locks, always taken in the
-- order holds -> accounts -> counters (each sorted by id) -> idempotency keys.

-- Post one balanced two-leg entry; customer balances change in their (locked) rows.
CREATE OR REPLACE FUNCTION ledger_post(
    p_kind text, p_hold_id bigint, p_reconciliation boolean,
    p_account_a text, p_amount_a bigint, p_description_a text,
    p_account_b text, p_amount_b bigint, p_description_b text
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_entry bigint;
BEGIN
    IF p_amount_a + p_amount_b <> 0 OR p_amount_a = 0 THEN
        RAISE EXCEPTION 'ledger: unbalanced entry % + %', p_amount_a, p_amount_b USING ERRCODE = 'LD002';
    END IF;
    INSERT INTO ledger_entries (kind, hold_id, reconciliation)
        VALUES (p_kind, p_hold_id, p_reconciliation) RETURNING entry_id INTO v_entry;
    INSERT INTO ledger_legs (entry_id, account_id, amount, description)
        VALUES (v_entry, p_account_a, p_amount_a, p_description_a),
               (v_entry, p_account_b, p_amount_b, p_description_b);
    UPDATE ledger_accounts a SET balance = a.balance + x.amount
        FROM (VALUES (p_account_a, p_amount_a), (p_account_b, p_amount_b)) AS x (account_id, amount)
        WHERE a.account_id = x.account_id AND a.kind = 'customer';
    RETURN v_entry;
END $$;

-- Stored results for keys already committed (replays), or a conflict marker.
CREATE OR REPLACE FUNCTION ledger_replays(p_keys text[], p_fingerprints text[])
RETURNS SETOF ledger_result LANGUAGE sql STABLE AS $$
    SELECT k.idx::integer,
           CASE WHEN r.fingerprint = p_fingerprints[k.idx] THEN r.status ELSE 'idempotency_conflict' END,
           r.hold_id, r.amount_a, r.amount_b, r.flag, r.ledger_balance, r.held, r.pending_credit
    FROM unnest(p_keys) WITH ORDINALITY AS k (key, idx)
    JOIN ledger_idempotency r ON r.key = k.key
$$;

-- Record the results of the new requests of a batch (p_replayed marks the others). A key
-- committed meanwhile by another transaction means this batch's work under it is void:
-- abort (LD001), the caller retries.
CREATE OR REPLACE FUNCTION ledger_record(
    p_keys text[], p_fingerprints text[], p_results ledger_result[], p_replayed boolean[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_rows integer;
BEGIN
    INSERT INTO ledger_idempotency (key, operation, fingerprint, status, hold_id, amount_a,
                                    amount_b, flag, ledger_balance, held, pending_credit)
    SELECT p_keys[r.idx], split_part(p_fingerprints[r.idx], ':', 1), p_fingerprints[r.idx],
           r.status, r.hold_id, r.amount_a, r.amount_b, r.flag, r.ledger_balance, r.held,
           r.pending_credit
    FROM unnest(p_results) AS r
    WHERE NOT p_replayed[r.idx]
    ON CONFLICT (key) DO NOTHING;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    IF v_rows <> (SELECT count(*) FROM unnest(p_replayed) AS done WHERE NOT done) THEN
        RAISE EXCEPTION 'ledger: idempotency key raced with another transaction' USING ERRCODE = 'LD001';
    END IF;
END $$;

-- Give back part of what a hold counts toward its daily counter; the count goes back too
-- once the hold counts nothing (spec 6: reversed amounts do not count).
CREATE OR REPLACE FUNCTION ledger_uncount(p_hold_id bigint, p_amount bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_counter text;
    v_day date;
    v_left bigint;
BEGIN
    UPDATE ledger_holds SET counted_amount = counted_amount - p_amount,
                            counted = counted_amount - p_amount > 0
        WHERE hold_id = p_hold_id AND counted
        RETURNING counter_id, counter_day, counted_amount INTO v_counter, v_day, v_left;
    IF FOUND THEN
        UPDATE ledger_daily_counters
            SET amount = amount - p_amount, count = count - CASE WHEN v_left = 0 THEN 1 ELSE 0 END
            WHERE counter_id = v_counter AND day = v_day;
    END IF;
END $$;

-- Close an open hold: post p_captured of it (may be 0) and release the rest.
CREATE OR REPLACE FUNCTION ledger_close_hold(
    p_hold ledger_holds, p_captured bigint, p_presumed boolean, p_reconciliation boolean
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_sign bigint;
    v_description text;
BEGIN
    IF p_hold.direction = 'debit' THEN
        UPDATE ledger_accounts SET held = held - p_hold.amount WHERE account_id = p_hold.account_id;
        v_sign := -1;
        v_description := coalesce(p_hold.description, 'ATM WITHDRAWAL');
    ELSE
        UPDATE ledger_accounts SET pending_credit = pending_credit - p_hold.amount
            WHERE account_id = p_hold.account_id;
        v_sign := 1;
        v_description := coalesce(p_hold.description, 'ATM DEPOSIT');
    END IF;
    IF p_captured > 0 THEN
        PERFORM ledger_post(CASE WHEN p_presumed THEN 'expiry' ELSE 'capture' END, p_hold.hold_id,
                            false, p_hold.account_id, v_sign * p_captured, v_description,
                            p_hold.counterparty_id, -v_sign * p_captured, v_description);
    END IF;
    PERFORM ledger_uncount(p_hold.hold_id, p_hold.amount - p_captured);
    UPDATE ledger_holds
        SET state = CASE WHEN p_captured > 0 THEN 'captured' ELSE 'released' END,
            captured_amount = p_captured, presumed = p_presumed,
            reconciliation = reconciliation OR p_reconciliation, resolved_at = now()
        WHERE hold_id = p_hold.hold_id;
END $$;

-- The result row for request p_idx, with the balances of a customer account after it.
CREATE OR REPLACE FUNCTION ledger_result_of(
    p_idx integer, p_status text, p_hold_id bigint, p_amount_a bigint, p_amount_b bigint,
    p_flag boolean, p_account_id text
) RETURNS ledger_result LANGUAGE sql STABLE AS $$
    SELECT ROW(p_idx, p_status, p_hold_id, p_amount_a, p_amount_b, p_flag,
               a.balance, a.held, a.pending_credit)::ledger_result
    FROM (SELECT 1) AS one
    LEFT JOIN ledger_accounts a ON a.account_id = p_account_id AND a.kind = 'customer'
$$;

-- Lock, in id order, the customer accounts named by p_accounts.
-- (plpgsql PERFORM reads every row; a SQL function would stop at the first.)
CREATE OR REPLACE FUNCTION ledger_lock_accounts(p_accounts text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM ledger_accounts
        WHERE account_id = ANY (p_accounts) AND kind = 'customer'
        ORDER BY account_id FOR UPDATE;
END $$;

-- Lock, in (counter, day) order, the daily counters of the given holds.
CREATE OR REPLACE FUNCTION ledger_lock_hold_counters(p_hold_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM ledger_daily_counters c
        WHERE (c.counter_id, c.day) IN (SELECT counter_id, counter_day FROM ledger_holds
                                        WHERE hold_id = ANY (p_hold_ids) AND counted)
        ORDER BY c.counter_id, c.day FOR UPDATE;
END $$;

-- Create an account (and the per-currency system accounts), posting its opening balance
-- against opening-equity. An existing account is returned unchanged; another currency or
-- kind for an existing id raises LD003.
CREATE OR REPLACE FUNCTION ledger_open_account(
    p_account_id text, p_name text, p_currency text, p_balance bigint, p_status text, p_kind text
) RETURNS ledger_accounts LANGUAGE plpgsql AS $$
DECLARE
    v_account ledger_accounts;
BEGIN
    INSERT INTO ledger_accounts (account_id, name, currency, kind, status)
        VALUES ('opening-equity:' || p_currency, 'opening-equity:' || p_currency, p_currency, 'system', 'active'),
               ('atm-cash:' || p_currency, 'atm-cash:' || p_currency, p_currency, 'cash', 'active')
        ON CONFLICT (account_id) DO NOTHING;
    INSERT INTO ledger_accounts (account_id, name, currency, kind, status)
        VALUES (p_account_id, p_name, p_currency, p_kind, p_status)
        ON CONFLICT (account_id) DO NOTHING
        RETURNING * INTO v_account;
    IF NOT FOUND THEN
        SELECT * INTO v_account FROM ledger_accounts WHERE account_id = p_account_id;
        IF v_account.currency <> p_currency OR v_account.kind <> p_kind THEN
            RAISE EXCEPTION 'ledger: account % exists with another currency or kind', p_account_id
                USING ERRCODE = 'LD003';
        END IF;
        RETURN v_account;
    END IF;
    IF p_kind = 'customer' AND p_balance > 0 THEN
        PERFORM ledger_post('opening', NULL, false, p_account_id, p_balance, 'OPENING BALANCE',
                            'opening-equity:' || p_currency, -p_balance, 'OPENING BALANCE');
    END IF;
    SELECT * INTO v_account FROM ledger_accounts WHERE account_id = p_account_id;
    RETURN v_account;
END $$;
