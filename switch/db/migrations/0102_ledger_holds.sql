-- Group-committed holds (owner: ledger_adapter): one call places a whole batch of holds.
--
-- Decisions are made in memory over arrays, in request order, against rows locked up front
-- (customer accounts in id order, then daily counters in (counter, day) order), so two
-- batches can never deadlock; then every table is written with one set-based statement.
-- Each request gets its own result row; a declined request does not fail the others.
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
    v_cps text[] := array_fill(NULL::text, ARRAY[n]);
    v_new integer[] := '{}';
    a_ids text[]; a_cur text[]; a_status text[];          -- locked customer accounts
    a_bal bigint[]; a_held bigint[]; a_pend bigint[]; a_dirty boolean[];
    o_ids text[]; o_cur text[]; o_status text[];          -- any account named, read only
    c_ids text[]; c_days date[]; c_keys text[];           -- locked daily counters
    c_amt bigint[]; c_cnt bigint[]; c_dirty boolean[];
    r ledger_result;
    i integer; ai integer; oi integer; ci integer;
    v_status text; v_cp text;
BEGIN
    FOR r IN SELECT * FROM ledger_replays(p_keys, p_fingerprints) LOOP
        v_res[r.idx] := r;
        v_done[r.idx] := true;
    END LOOP;

    SELECT coalesce(array_agg(s.account_id ORDER BY s.account_id), '{}'),
           array_agg(s.currency ORDER BY s.account_id), array_agg(s.status ORDER BY s.account_id),
           array_agg(s.balance ORDER BY s.account_id), array_agg(s.held ORDER BY s.account_id),
           array_agg(s.pending_credit ORDER BY s.account_id)
      INTO a_ids, a_cur, a_status, a_bal, a_held, a_pend
      FROM (SELECT account_id, currency, status, balance, held, pending_credit
              FROM ledger_accounts WHERE account_id = ANY (p_accounts) AND kind = 'customer'
             ORDER BY account_id FOR UPDATE) AS s;
    a_dirty := array_fill(false, ARRAY[cardinality(a_ids)]);

    SELECT coalesce(array_agg(account_id), '{}'), array_agg(currency), array_agg(status)
      INTO o_ids, o_cur, o_status
      FROM ledger_accounts
     WHERE account_id = ANY (p_accounts) OR account_id = ANY (p_counterparties)
        OR account_id = ANY (SELECT DISTINCT 'atm-cash:' || c FROM unnest(a_cur) AS c);

    WITH up AS (
        INSERT INTO ledger_daily_counters AS c (counter_id, day)
        SELECT DISTINCT t.cid, t.d FROM unnest(p_counters, p_days) AS t (cid, d)
         WHERE t.cid IS NOT NULL ORDER BY 1, 2
        ON CONFLICT (counter_id, day) DO UPDATE SET amount = c.amount
        RETURNING c.counter_id, c.day, c.amount, c.count)
    SELECT coalesce(array_agg(counter_id), '{}'), array_agg(day),
           array_agg(counter_id || '@' || day::text), array_agg(amount), array_agg(count)
      INTO c_ids, c_days, c_keys, c_amt, c_cnt FROM up;
    c_dirty := array_fill(false, ARRAY[cardinality(c_ids)]);

    FOR i IN 1 .. n LOOP
        CONTINUE WHEN v_done[i];
        v_new := v_new || i;
        v_status := NULL;
        ai := array_position(a_ids, p_accounts[i]);
        IF ai IS NULL THEN
            v_status := CASE WHEN array_position(o_ids, p_accounts[i]) IS NULL
                             THEN 'account_not_found' ELSE 'account_not_active' END;
        ELSIF a_status[ai] <> 'active' THEN
            v_status := 'account_not_active';
        ELSE
            v_cp := coalesce(p_counterparties[i], 'atm-cash:' || a_cur[ai]);
            oi := array_position(o_ids, v_cp);
            ci := CASE WHEN p_counters[i] IS NULL THEN NULL
                       ELSE array_position(c_keys, p_counters[i] || '@' || p_days[i]::text) END;
            IF oi IS NULL THEN
                v_status := 'account_not_found';
            ELSIF o_status[oi] <> 'active' THEN
                v_status := 'account_not_active';
            ELSIF o_cur[oi] <> a_cur[ai] THEN
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
                v_cps[i] := v_cp;
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

    PERFORM ledger_record(p_keys, p_fingerprints, v_res, v_new);
    RETURN QUERY SELECT * FROM unnest(v_res);
END $$;
