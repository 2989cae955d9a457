-- Holds and transfers without the ledger's own idempotency record (owner: ledger_adapter).
--
-- The authorization engine calls ledger_hold_batch and ledger_transfer_batch inside the same
-- transaction that claims the message key (auth_messages' primary key), so the message key
-- already makes each effect happen at most once; writing a second key per hold into
-- ledger_idempotency (and looking it up first) was pure cost (issue 21, "a minimal write
-- set"). Such callers pass NULL fingerprints; every other caller (the Ledger API) passes
-- them and keeps its idempotency exactly as before.

CREATE OR REPLACE FUNCTION ledger_replays(p_keys text[], p_fingerprints text[])
RETURNS SETOF ledger_result LANGUAGE sql STABLE AS $$
    SELECT k.idx::integer,
           CASE WHEN r.fingerprint = p_fingerprints[k.idx] THEN r.status ELSE 'idempotency_conflict' END,
           r.hold_id, r.amount_a, r.amount_b, r.flag, r.ledger_balance, r.held, r.pending_credit
    FROM unnest(p_keys) WITH ORDINALITY AS k (key, idx)
    JOIN ledger_idempotency r ON r.key = k.key
    WHERE p_fingerprints IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION ledger_record(
    p_keys text[], p_fingerprints text[], p_results ledger_result[], p_replayed boolean[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_rows integer;
BEGIN
    IF p_fingerprints IS NULL THEN
        RETURN;  -- the caller's own key makes the batch idempotent
    END IF;
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

-- ledger_hold_batch of migration 0102, with neither the replay lookup nor the record for a
-- caller that passes no fingerprints (statements skipped, not run on an empty set).
CREATE OR REPLACE FUNCTION ledger_hold_batch(
    p_keys text[], p_fingerprints text[], p_accounts text[], p_counterparties text[],
    p_amounts bigint[], p_directions text[], p_expires timestamptz[], p_actions text[],
    p_counters text[], p_days date[], p_amount_max bigint[], p_count_max bigint[],
    p_descriptions text[], p_references text[]
) RETURNS SETOF ledger_result LANGUAGE plpgsql AS $$
DECLARE
    n integer := cardinality(p_keys);
    v_res ledger_result[] := array_fill(NULL::ledger_result, ARRAY[n]);
    v_done boolean[] := array_fill(false, ARRAY[n]);
    v_ok boolean[] := array_fill(false, ARRAY[n]);
    v_hold bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    v_cps text[];
    a_ids text[]; a_cur text[]; a_status text[];          -- locked customer accounts
    a_bal bigint[]; a_held bigint[]; a_pend bigint[]; a_dirty boolean[];
    c_ids text[]; c_days date[];                          -- locked daily counters
    c_amt bigint[]; c_cnt bigint[]; c_dirty boolean[];
    r ledger_result;
    v_ai integer[]; v_ci integer[]; v_exists boolean[];   -- per request: where its rows are
    v_ocur text[]; v_ostatus text[];                      -- per request: its counterparty
    i integer; ai integer; ci integer;
    v_status text;
BEGIN
    IF p_fingerprints IS NOT NULL THEN  -- keyed: replays answer as the first time
        FOR r IN SELECT * FROM ledger_replays(p_keys, p_fingerprints) LOOP
            v_res[r.idx] := r;
            v_done[r.idx] := true;
        END LOOP;
    END IF;

    -- Aggregates read their input in the locked, sorted order of the subquery.
    SELECT coalesce(array_agg(s.account_id), '{}'), array_agg(s.currency), array_agg(s.status),
           array_agg(s.balance), array_agg(s.held), array_agg(s.pending_credit)
      INTO a_ids, a_cur, a_status, a_bal, a_held, a_pend
      FROM (SELECT account_id, currency, status, balance, held, pending_credit
              FROM ledger_accounts WHERE account_id = ANY (p_accounts) AND kind = 'customer'
             ORDER BY account_id FOR UPDATE) AS s;
    a_dirty := array_fill(false, ARRAY[cardinality(a_ids)]);

    WITH up AS (
        INSERT INTO ledger_daily_counters AS c (counter_id, day)
        SELECT DISTINCT t.cid, t.d FROM unnest(p_counters, p_days) AS t (cid, d)
         WHERE t.cid IS NOT NULL ORDER BY 1, 2
        ON CONFLICT (counter_id, day) DO UPDATE SET amount = c.amount
        RETURNING c.counter_id, c.day, c.amount, c.count)
    SELECT coalesce(array_agg(counter_id), '{}'), array_agg(day), array_agg(amount),
           array_agg(count)
      INTO c_ids, c_days, c_amt, c_cnt FROM up;
    c_dirty := array_fill(false, ARRAY[cardinality(c_ids)]);

    -- Resolve every request's account, counterparty and counter in one join (hash lookups)
    -- rather than searching the arrays once per request.
    SELECT array_agg(j.ai), array_agg(j.ci), array_agg(j.present), array_agg(j.cp),
           array_agg(j.ocur), array_agg(j.ostatus)
      INTO v_ai, v_ci, v_exists, v_cps, v_ocur, v_ostatus
      FROM (SELECT a.ord::integer AS ai, c.ord::integer AS ci, x.account_id IS NOT NULL AS present,
                   coalesce(t.cp, 'atm-cash:' || a.cur) AS cp, o.currency AS ocur,
                   o.status AS ostatus
              FROM unnest(p_accounts, p_counterparties, p_counters, p_days) WITH ORDINALITY
                   AS t (acc, cp, cid, d, idx)
              LEFT JOIN unnest(a_ids, a_cur) WITH ORDINALITY AS a (id, cur, ord) ON a.id = t.acc
              LEFT JOIN unnest(c_ids, c_days) WITH ORDINALITY AS c (id, d, ord)
                     ON c.id = t.cid AND c.d = t.d
              LEFT JOIN ledger_accounts x ON x.account_id = t.acc
              LEFT JOIN ledger_accounts o ON o.account_id = coalesce(t.cp, 'atm-cash:' || a.cur)
             ORDER BY t.idx) AS j;

    FOR i IN 1 .. n LOOP
        CONTINUE WHEN v_done[i];
        v_status := NULL;
        ai := v_ai[i];
        ci := v_ci[i];
        IF ai IS NULL THEN
            v_status := CASE WHEN v_exists[i] THEN 'account_not_active' ELSE 'account_not_found' END;
        ELSIF a_status[ai] <> 'active' THEN
            v_status := 'account_not_active';
        ELSE
            IF v_ostatus[i] IS NULL THEN
                v_status := 'account_not_found';
            ELSIF v_ostatus[i] <> 'active' THEN
                v_status := 'account_not_active';
            ELSIF v_ocur[i] <> a_cur[ai] THEN
                v_status := 'currency_mismatch';
            ELSIF ci IS NOT NULL AND p_amount_max[i] IS NOT NULL
                  AND c_amt[ci] + p_amounts[i] > p_amount_max[i] THEN
                v_status := 'daily_amount_exceeded';
            ELSIF ci IS NOT NULL AND p_count_max[i] IS NOT NULL AND c_cnt[ci] + 1 > p_count_max[i] THEN
                v_status := 'daily_count_exceeded';
            ELSIF p_directions[i] = 'debit' AND a_bal[ai] - a_held[ai] < p_amounts[i] THEN
                v_status := 'insufficient_funds';
            ELSE
                v_status := 'approved';
                v_ok[i] := true;
                v_hold[i] := nextval('ledger_hold_ids');
                IF p_directions[i] = 'debit' THEN
                    a_held[ai] := a_held[ai] + p_amounts[i];
                ELSE
                    a_pend[ai] := a_pend[ai] + p_amounts[i];
                END IF;
                a_dirty[ai] := true;
                IF ci IS NOT NULL THEN
                    c_amt[ci] := c_amt[ci] + p_amounts[i];
                    c_cnt[ci] := c_cnt[ci] + 1;
                    c_dirty[ci] := true;
                END IF;
            END IF;
        END IF;
        IF ai IS NULL THEN
            v_res[i] := ROW(i, v_status, NULL, 0, 0, false, NULL, NULL, NULL)::ledger_result;
        ELSE
            v_res[i] := ROW(i, v_status, v_hold[i], 0, 0, false,
                            a_bal[ai], a_held[ai], a_pend[ai])::ledger_result;
        END IF;
    END LOOP;

    INSERT INTO ledger_holds (hold_id, kind, account_id, counterparty_id, direction, amount, state,
                              expires_at, expiry_action, counter_id, counter_day, counted_amount,
                              counted, description, reference)
    SELECT t.h, 'hold', t.acc, t.cp, t.dir, t.amt, 'open', t.exp, t.act, t.cid, t.d,
           CASE WHEN t.cid IS NULL THEN 0 ELSE t.amt END, t.cid IS NOT NULL, t.descr, t.ref::jsonb
      FROM unnest(v_hold, p_accounts, v_cps, p_directions, p_amounts, p_expires, p_actions,
                  p_counters, p_days, p_descriptions, p_references, v_ok)
           AS t (h, acc, cp, dir, amt, exp, act, cid, d, descr, ref, ok)
     WHERE t.ok;

    UPDATE ledger_accounts a SET held = u.held, pending_credit = u.pend
      FROM unnest(a_ids, a_held, a_pend, a_dirty) AS u (id, held, pend, dirty)
     WHERE u.dirty AND a.account_id = u.id;

    UPDATE ledger_daily_counters c SET amount = u.amt, count = u.cnt
      FROM unnest(c_ids, c_days, c_amt, c_cnt, c_dirty) AS u (cid, d, amt, cnt, dirty)
     WHERE u.dirty AND c.counter_id = u.cid AND c.day = u.d;

    IF p_fingerprints IS NOT NULL THEN
        PERFORM ledger_record(p_keys, p_fingerprints, v_res, v_done);
    END IF;
    RETURN QUERY SELECT * FROM unnest(v_res);
END $$;
-- CREATE OR REPLACE drops the function's settings: the one of migration 0105 again.
ALTER FUNCTION ledger_hold_batch(text[], text[], text[], text[], bigint[], text[], timestamptz[],
                                 text[], text[], date[], bigint[], bigint[], text[], text[])
    SET enable_seqscan = off;
