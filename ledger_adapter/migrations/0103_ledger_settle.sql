-- Capture, release, reverse, transfer, expiry sweep and release-by-key (owner: ledger_adapter).
-- Same lock order as everywhere: holds -> customer accounts -> daily counters (each sorted)
-- -> idempotency keys.

CREATE OR REPLACE FUNCTION ledger_capture_one(p_idx integer, p_hold_id bigint, p_amount bigint)
RETURNS ledger_result LANGUAGE plpgsql AS $$
DECLARE
    h ledger_holds;
    v_amount bigint;
BEGIN
    SELECT * INTO h FROM ledger_holds WHERE hold_id = p_hold_id;
    IF NOT FOUND THEN
        RETURN ROW(p_idx, 'hold_not_found', p_hold_id, 0, 0, false, NULL, NULL, NULL)::ledger_result;
    END IF;
    IF h.state <> 'open' THEN
        RETURN ledger_result_of(p_idx, CASE WHEN h.state = 'captured' THEN 'already_captured'
                                            ELSE 'already_released' END,
                                p_hold_id, h.captured_amount, h.amount - h.captured_amount, false,
                                h.account_id);
    END IF;
    v_amount := coalesce(p_amount, h.amount);
    IF v_amount > h.amount THEN
        RETURN ledger_result_of(p_idx, 'amount_exceeds_hold', p_hold_id, 0, 0, false, h.account_id);
    END IF;
    PERFORM ledger_close_hold(h, v_amount, false, false);
    RETURN ledger_result_of(p_idx, 'captured', p_hold_id, v_amount, h.amount - v_amount, false,
                            h.account_id);
END $$;

CREATE OR REPLACE FUNCTION ledger_release_one(p_idx integer, p_hold_id bigint)
RETURNS ledger_result LANGUAGE plpgsql AS $$
DECLARE
    h ledger_holds;
BEGIN
    SELECT * INTO h FROM ledger_holds WHERE hold_id = p_hold_id;
    IF NOT FOUND THEN
        RETURN ROW(p_idx, 'hold_not_found', p_hold_id, 0, 0, false, NULL, NULL, NULL)::ledger_result;
    END IF;
    IF h.state <> 'open' THEN
        RETURN ledger_result_of(p_idx, CASE WHEN h.state = 'captured' THEN 'already_captured'
                                            ELSE 'already_released' END,
                                p_hold_id, 0, 0, false, h.account_id);
    END IF;
    PERFORM ledger_close_hold(h, 0, false, false);
    RETURN ledger_result_of(p_idx, 'released', p_hold_id, h.amount, 0, false, h.account_id);
END $$;

-- A correcting entry for a captured hold or transfer. Never refused for funds: when it takes
-- the debited customer account below zero available, it is flagged for reconciliation.
CREATE OR REPLACE FUNCTION ledger_reverse_one(p_idx integer, p_hold_id bigint, p_amount bigint)
RETURNS ledger_result LANGUAGE plpgsql AS $$
DECLARE
    h ledger_holds;
    v_amount bigint;
    v_sign bigint;
    v_debited text;
    v_overdraws boolean;
BEGIN
    SELECT * INTO h FROM ledger_holds WHERE hold_id = p_hold_id;
    IF NOT FOUND THEN
        RETURN ROW(p_idx, 'hold_not_found', p_hold_id, 0, 0, false, NULL, NULL, NULL)::ledger_result;
    END IF;
    IF h.state <> 'captured' THEN
        RETURN ledger_result_of(p_idx, 'not_captured', p_hold_id, 0, 0, false, h.account_id);
    END IF;
    v_amount := coalesce(p_amount, h.captured_amount - h.reversed_amount);
    IF v_amount > h.captured_amount - h.reversed_amount THEN
        RETURN ledger_result_of(p_idx, 'amount_exceeds_captured', p_hold_id, 0, 0, false,
                                h.account_id);
    END IF;
    v_sign := CASE WHEN h.direction = 'debit' THEN 1 ELSE -1 END;
    v_debited := CASE WHEN v_sign = 1 THEN h.counterparty_id ELSE h.account_id END;
    SELECT kind = 'customer' AND balance - held - v_amount < 0 INTO v_overdraws
      FROM ledger_accounts WHERE account_id = v_debited;
    IF v_amount > 0 THEN
        PERFORM ledger_post('reversal', p_hold_id, v_overdraws,
                            h.account_id, v_sign * v_amount, 'REVERSAL',
                            h.counterparty_id, -v_sign * v_amount, 'REVERSAL');
    END IF;
    UPDATE ledger_holds SET reversed_amount = reversed_amount + v_amount,
                            reconciliation = reconciliation OR v_overdraws
     WHERE hold_id = p_hold_id;
    PERFORM ledger_uncount(p_hold_id, v_amount);
    RETURN ledger_result_of(p_idx, 'reversed', p_hold_id, v_amount, 0, v_overdraws, h.account_id);
END $$;

-- A batch of captures, releases and reversals (p_operations: capture|release|reverse).
CREATE OR REPLACE FUNCTION ledger_settle_batch(
    p_keys text[], p_fingerprints text[], p_operations text[], p_hold_ids bigint[], p_amounts bigint[]
) RETURNS SETOF ledger_result LANGUAGE plpgsql AS $$
DECLARE
    n integer := cardinality(p_keys);
    v_res ledger_result[] := array_fill(NULL::ledger_result, ARRAY[n]);
    v_done boolean[] := array_fill(false, ARRAY[n]);
    r ledger_result;
    i integer;
BEGIN
    FOR r IN SELECT * FROM ledger_replays(p_keys, p_fingerprints) LOOP
        v_res[r.idx] := r;
        v_done[r.idx] := true;
    END LOOP;
    PERFORM 1 FROM ledger_holds WHERE hold_id = ANY (p_hold_ids) ORDER BY hold_id FOR UPDATE;
    PERFORM ledger_lock_accounts(ARRAY(
        SELECT account_id FROM ledger_holds WHERE hold_id = ANY (p_hold_ids)
        UNION SELECT counterparty_id FROM ledger_holds WHERE hold_id = ANY (p_hold_ids)));
    PERFORM ledger_lock_hold_counters(p_hold_ids);
    FOR i IN 1 .. n LOOP
        CONTINUE WHEN v_done[i];
        v_res[i] := CASE p_operations[i]
            WHEN 'capture' THEN ledger_capture_one(i, p_hold_ids[i], p_amounts[i])
            WHEN 'release' THEN ledger_release_one(i, p_hold_ids[i])
            WHEN 'reverse' THEN ledger_reverse_one(i, p_hold_ids[i], p_amounts[i])
        END;
        IF v_res[i] IS NULL THEN
            RAISE EXCEPTION 'ledger: unknown operation %', p_operations[i] USING ERRCODE = 'LD004';
        END IF;
    END LOOP;
    PERFORM ledger_record(p_keys, p_fingerprints, v_res, v_done);
    RETURN QUERY SELECT * FROM unnest(v_res);
END $$;

CREATE OR REPLACE FUNCTION ledger_transfer_one(
    p_idx integer, p_from text, p_to text, p_amount bigint, p_counter text, p_day date,
    p_amount_max bigint, p_count_max bigint, p_description text, p_reference text
) RETURNS ledger_result LANGUAGE plpgsql AS $$
DECLARE
    src ledger_accounts;
    dst ledger_accounts;
    c ledger_daily_counters;
    v_status text;
    v_hold bigint;
BEGIN
    SELECT * INTO src FROM ledger_accounts WHERE account_id = p_from;
    SELECT * INTO dst FROM ledger_accounts WHERE account_id = p_to;
    IF p_counter IS NOT NULL THEN
        SELECT * INTO c FROM ledger_daily_counters WHERE counter_id = p_counter AND day = p_day;
    END IF;
    v_status := CASE
        WHEN src.account_id IS NULL THEN 'account_not_found'
        WHEN src.status <> 'active' OR src.kind <> 'customer' THEN 'account_not_active'
        WHEN dst.account_id IS NULL THEN 'account_not_found'
        WHEN dst.status <> 'active' THEN 'account_not_active'
        WHEN dst.currency <> src.currency THEN 'currency_mismatch'
        WHEN p_amount_max IS NOT NULL AND c.amount + p_amount > p_amount_max THEN 'daily_amount_exceeded'
        WHEN p_count_max IS NOT NULL AND c.count + 1 > p_count_max THEN 'daily_count_exceeded'
        WHEN src.balance - src.held < p_amount THEN 'insufficient_funds'
        ELSE 'approved' END;
    IF v_status = 'approved' THEN
        INSERT INTO ledger_holds (kind, account_id, counterparty_id, direction, amount, state,
                                  captured_amount, counter_id, counter_day, counted_amount, counted,
                                  description, reference, resolved_at)
            VALUES ('transfer', p_from, p_to, 'debit', p_amount, 'captured', p_amount, p_counter,
                    p_day, CASE WHEN p_counter IS NULL THEN 0 ELSE p_amount END,
                    p_counter IS NOT NULL, p_description, p_reference::jsonb, now())
            RETURNING hold_id INTO v_hold;
        IF p_counter IS NOT NULL THEN
            UPDATE ledger_daily_counters SET amount = amount + p_amount, count = count + 1
             WHERE counter_id = p_counter AND day = p_day;
        END IF;
        PERFORM ledger_post('transfer', v_hold, false,
                            p_from, -p_amount, coalesce(p_description, 'TRANSFER OUT'),
                            p_to, p_amount, coalesce(p_description, 'TRANSFER IN'));
    END IF;
    RETURN ledger_result_of(p_idx, v_status, v_hold, CASE WHEN v_hold IS NULL THEN 0 ELSE p_amount END,
                            0, false, p_from);
END $$;

CREATE OR REPLACE FUNCTION ledger_transfer_batch(
    p_keys text[], p_fingerprints text[], p_froms text[], p_tos text[], p_amounts bigint[],
    p_counters text[], p_days date[], p_amount_max bigint[], p_count_max bigint[],
    p_descriptions text[], p_references text[]
) RETURNS SETOF ledger_result LANGUAGE plpgsql AS $$
DECLARE
    n integer := cardinality(p_keys);
    v_res ledger_result[] := array_fill(NULL::ledger_result, ARRAY[n]);
    v_done boolean[] := array_fill(false, ARRAY[n]);
    r ledger_result;
    i integer;
BEGIN
    FOR r IN SELECT * FROM ledger_replays(p_keys, p_fingerprints) LOOP
        v_res[r.idx] := r;
        v_done[r.idx] := true;
    END LOOP;
    PERFORM ledger_lock_accounts(p_froms || p_tos);
    INSERT INTO ledger_daily_counters AS c (counter_id, day)
        SELECT DISTINCT t.cid, t.d FROM unnest(p_counters, p_days) AS t (cid, d)
         WHERE t.cid IS NOT NULL ORDER BY 1, 2
        ON CONFLICT (counter_id, day) DO UPDATE SET amount = c.amount;
    FOR i IN 1 .. n LOOP
        CONTINUE WHEN v_done[i];
        v_res[i] := ledger_transfer_one(i, p_froms[i], p_tos[i], p_amounts[i], p_counters[i],
                                        p_days[i], p_amount_max[i], p_count_max[i],
                                        p_descriptions[i], p_references[i]);
    END LOOP;
    PERFORM ledger_record(p_keys, p_fingerprints, v_res, v_done);
    RETURN QUERY SELECT * FROM unnest(v_res);
END $$;

-- Resolve up to p_limit expired open holds by their expiry action; holds another process is
-- resolving are skipped (SKIP LOCKED), so each is resolved exactly once.
CREATE OR REPLACE FUNCTION ledger_sweep_expired(p_now timestamptz, p_limit integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[];
    h ledger_holds;
BEGIN
    SELECT coalesce(array_agg(hold_id ORDER BY hold_id), '{}') INTO v_ids FROM (
        SELECT hold_id FROM ledger_holds
         WHERE state = 'open' AND expires_at <= p_now
         ORDER BY hold_id LIMIT p_limit FOR UPDATE SKIP LOCKED) AS s;
    PERFORM ledger_lock_accounts(ARRAY(
        SELECT account_id FROM ledger_holds WHERE hold_id = ANY (v_ids)
        UNION SELECT counterparty_id FROM ledger_holds WHERE hold_id = ANY (v_ids)));
    PERFORM ledger_lock_hold_counters(v_ids);
    FOR h IN SELECT * FROM ledger_holds WHERE hold_id = ANY (v_ids) ORDER BY hold_id LOOP
        IF h.expiry_action = 'capture' THEN
            PERFORM ledger_close_hold(h, h.amount, true, true);
        ELSE
            PERFORM ledger_close_hold(h, 0, false, true);
        END IF;
    END LOOP;
    RETURN cardinality(v_ids);
END $$;

-- Spec 5.6: undo what a hold under p_key did. With no record yet the key is voided first, so
-- a hold still in flight under it finds the key taken and cannot take effect.
CREATE OR REPLACE FUNCTION ledger_release_by_key(p_key text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    rec ledger_idempotency;
    h ledger_holds;
BEGIN
    INSERT INTO ledger_idempotency (key, operation, fingerprint, status)
        VALUES (p_key, 'void', 'void:', 'void') ON CONFLICT (key) DO NOTHING;
    IF FOUND THEN
        RETURN 'no_hold';
    END IF;
    SELECT * INTO rec FROM ledger_idempotency WHERE key = p_key;
    IF rec.operation NOT IN ('hold', 'void') THEN
        RETURN 'not_a_hold';
    END IF;
    IF rec.hold_id IS NULL THEN
        RETURN 'no_hold';
    END IF;
    SELECT * INTO h FROM ledger_holds WHERE hold_id = rec.hold_id FOR UPDATE;
    IF h.state <> 'open' THEN
        RETURN 'already_resolved';
    END IF;
    PERFORM ledger_lock_accounts(ARRAY[h.account_id, h.counterparty_id]);
    PERFORM ledger_lock_hold_counters(ARRAY[h.hold_id]);
    PERFORM ledger_close_hold(h, 0, false, false);
    RETURN 'released';
END $$;
