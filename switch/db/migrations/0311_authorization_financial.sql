-- auth_financial_batch: every 0200 of a batch in one transaction (owner: switch/authorization).
-- (Chip cards, section 11: p_chips none | fallback | fraud | passed and the ATC, applied after
-- 75 and before 55; a passed ATC is recorded under the card's lock by auth_accept_atc.)
--
-- The switch has done everything that needs a key before calling (MAC, PIN verification
-- against the card's cached PIN data, the new PIN's data for a PIN change, the checks that
-- depend on the request alone) and passes the outcomes in; this function applies spec 6's
-- order of checks from "duplicate key" on, under row locks, and stores the decision.
--
-- Per request (arrays in request order; the caller sorts by key so locks are taken in order):
--   key (41, 11, 7, 32), fingerprint (spec 5.5 content), processing code, amount, token (who
--   may answer this decision: a repeat that is answered takes the token over), card id and the
--   card version the switch decided with (another version: 'stale', nothing recorded, the switch
--   refreshes its copy and resubmits), presented expiry, YYMM of the received day, PIN outcome
--   (ok | bad | none), field 102 and 103, the request-only outcome (12 / 13 / 61 per
--   transaction, or NULL), kind, the new PIN data (PIN change), field 49, the UTC day, hold
--   expiry, daily maximum amount and count (withdrawals or transfers), ledger key and
--   fingerprint, description and reference.
CREATE OR REPLACE FUNCTION auth_financial_batch(
    p_terminals text[], p_stans text[], p_tdts text[], p_acqs text[], p_fps text[],
    p_pcs text[], p_amounts bigint[], p_tokens text[], p_cards bigint[], p_versions integer[],
    p_expiries text[], p_months integer[], p_pins text[], p_froms text[], p_tos text[],
    p_statics text[], p_kinds text[], p_new_pins text[], p_currencies text[], p_days date[],
    p_expires timestamptz[], p_daily_max bigint[], p_daily_count bigint[], p_ledger_keys text[],
    p_ledger_fps text[], p_descriptions text[], p_references text[], p_rrns text[],
    p_chips text[], p_atcs integer[], p_tries_max integer
) RETURNS SETOF auth_result LANGUAGE plpgsql
SET enable_seqscan = off  -- every lookup is by key: see migration 0105
AS $$
DECLARE
    n integer := cardinality(p_terminals);
    v_status text[] := array_fill('new'::text, ARRAY[n]);
    v_code text[] := array_fill(NULL::text, ARRAY[n]);
    v_rec bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    v_created timestamptz[] := array_fill(NULL::timestamptz, ARRAY[n]);
    v_hold bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    v_lbal bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    v_avail bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    v_cur text[] := array_fill(NULL::text, ARRAY[n]);
    v_info jsonb[] := array_fill(NULL::jsonb, ARRAY[n]);
    v_acct text[] := array_fill(NULL::text, ARRAY[n]);
    v_chip boolean[] := array_fill(false, ARRAY[n]);
    v_claimed boolean[] := array_fill(false, ARRAY[n]);
    c_ids bigint[]; c_status text[]; c_expiry text[]; c_tries integer[]; c_version integer[];
    c_acct text[]; c_dirty boolean[];
    a_ids text[]; a_status text[]; a_cur text[]; a_kind text[]; a_name text[];
    h_idx integer[] := '{}';   -- requests that go to ledger_hold_batch
    t_idx integer[] := '{}';   -- requests that go to ledger_transfer_batch
    r record;
    lr ledger_result;
    i integer; ci integer; ai integer; pi integer;
    v_code_i text;
    v_balance bigint; v_available bigint;
BEGIN
    -- 1. Claim every key at once. A key another transaction is inserting makes this wait on
    --    the index until it commits (then it is a repeat) or aborts (then it is ours).
    FOR r IN
        WITH ins AS (
            INSERT INTO auth_messages AS m (message_class, terminal_id, stan, transmission_dt,
                                            acquirer_id, fingerprint, processing_code,
                                            amount_minor, state, token, card_id, kind, rrn)
            SELECT '0200', t.term, t.stan, t.tdt, t.acq, t.fp, t.pc, t.amt, 'done', t.tok,
                   t.card, t.kind, t.rrn
              FROM unnest(p_terminals, p_stans, p_tdts, p_acqs, p_fps, p_pcs, p_amounts,
                          p_tokens, p_cards, p_kinds, p_rrns) WITH ORDINALITY
                   AS t (term, stan, tdt, acq, fp, pc, amt, tok, card, kind, rrn, idx)
             ORDER BY t.idx
            ON CONFLICT DO NOTHING
            RETURNING m.id, m.terminal_id, m.stan, m.transmission_dt, m.acquirer_id, m.created_at)
        SELECT t.idx::integer AS idx, ins.id, ins.created_at
          FROM ins JOIN unnest(p_terminals, p_stans, p_tdts, p_acqs) WITH ORDINALITY
                        AS t (term, stan, tdt, acq, idx)
            ON ins.terminal_id = t.term AND ins.stan = t.stan
           AND ins.transmission_dt = t.tdt AND ins.acquirer_id = t.acq
    LOOP
        v_claimed[r.idx] := true;
        v_rec[r.idx] := r.id;
        v_created[r.idx] := r.created_at;
    END LOOP;

    -- 2. Keys already answered: the stored decision again (spec 5.5), 94 for other content.
    FOR r IN
        SELECT t.idx::integer AS idx, m.*
          FROM unnest(p_terminals, p_stans, p_tdts, p_acqs) WITH ORDINALITY
               AS t (term, stan, tdt, acq, idx)
          JOIN auth_messages m ON m.message_class = '0200' AND m.terminal_id = t.term
           AND m.stan = t.stan AND m.transmission_dt = t.tdt AND m.acquirer_id = t.acq
         WHERE NOT v_claimed[t.idx]
           FOR UPDATE OF m
    LOOP
        v_rec[r.idx] := r.id;
        v_created[r.idx] := r.created_at;
        IF r.fingerprint <> p_fps[r.idx] THEN
            v_status[r.idx] := 'conflict';
            v_code[r.idx] := '94';
        ELSIF r.state = 'pending' THEN
            v_status[r.idx] := 'pending';
        ELSE
            v_status[r.idx] := 'repeat';
            v_code[r.idx] := r.response_code;
            v_hold[r.idx] := r.hold_id;
            v_lbal[r.idx] := r.ledger_balance;
            v_avail[r.idx] := r.available_balance;
            v_cur[r.idx] := r.currency;
            v_info[r.idx] := r.info;
            v_chip[r.idx] := r.chip_passed;
            UPDATE auth_messages SET token = p_tokens[r.idx] WHERE id = r.id;
        END IF;
    END LOOP;
    FOR i IN 1 .. n LOOP
        IF NOT v_claimed[i] AND v_rec[i] IS NULL THEN
            v_status[i] := 'stale';  -- purged between the two statements: submit again
        END IF;
    END LOOP;

    -- 3. The cards of the new requests, locked in id order.
    SELECT coalesce(array_agg(s.card_id), '{}'), array_agg(s.status), array_agg(s.expiry::text),
           array_agg(s.pin_tries), array_agg(s.version), array_agg(s.account_id)
      INTO c_ids, c_status, c_expiry, c_tries, c_version, c_acct
      FROM (SELECT card_id, status, expiry, pin_tries, version, account_id FROM cards
             WHERE card_id = ANY (ARRAY(SELECT p_cards[k] FROM generate_subscripts(p_cards, 1) k
                                         WHERE v_claimed[k]))
             ORDER BY card_id FOR UPDATE) AS s;
    c_dirty := array_fill(false, ARRAY[cardinality(c_ids)]);

    -- 4. Their accounts and the payees named in 103, locked in id order (the ledger takes the
    --    same locks again below; holding them already costs nothing).
    SELECT coalesce(array_agg(s.account_id), '{}'), array_agg(s.status), array_agg(s.currency),
           array_agg(s.kind), array_agg(s.name)
      INTO a_ids, a_status, a_cur, a_kind, a_name
      FROM (SELECT account_id, status, currency, kind, name FROM ledger_accounts
             WHERE account_id = ANY (c_acct || p_tos)
             ORDER BY account_id FOR UPDATE) AS s;

    -- 5. Spec 6's order of checks, request by request, on the locked rows.
    FOR i IN 1 .. n LOOP
        CONTINUE WHEN NOT v_claimed[i];
        v_code_i := NULL;
        ci := array_position(c_ids, p_cards[i]);
        IF p_cards[i] IS NULL THEN
            v_code_i := '14';
        ELSIF ci IS NULL OR c_version[ci] <> p_versions[i] THEN
            v_status[i] := 'stale';
            CONTINUE;
        ELSIF c_status[ci] = 'lost' THEN
            v_code_i := '41';
        ELSIF c_status[ci] = 'stolen' THEN
            v_code_i := '43';
        ELSIF c_status[ci] = 'closed' THEN
            v_code_i := '57';
        ELSIF auth_expired(c_expiry[ci], p_months[i]) OR auth_expired(p_expiries[i], p_months[i]) THEN
            v_code_i := '54';
        ELSIF c_status[ci] = 'blocked' THEN
            v_code_i := '75';
        ELSIF p_pins[i] = 'unchecked' THEN
            v_status[i] := 'stale';  -- the switch's copy said unusable; the card says otherwise
            CONTINUE;
        ELSIF p_chips[i] = 'fallback' THEN
            v_code_i := '05';  -- section 11: a chip card read by stripe, no fallback
        ELSIF p_chips[i] = 'fraud' THEN
            v_code_i := '59';
        ELSIF p_chips[i] = 'passed' AND NOT auth_accept_atc(p_cards[i], p_atcs[i]) THEN
            v_code_i := '59';  -- this ATC passed for another request first (replay)
        ELSIF p_pins[i] = 'bad' THEN
            -- Spec 10: the counter is read and written under the card's lock, so however many
            -- requests race, exactly the third consecutive wrong PIN blocks the card.
            c_tries[ci] := c_tries[ci] + 1;
            c_dirty[ci] := true;
            IF c_tries[ci] >= p_tries_max THEN
                c_status[ci] := 'blocked';
                v_code_i := '75';
            ELSE
                v_code_i := '55';
            END IF;
        ELSE
            IF p_pins[i] = 'ok' AND c_tries[ci] > 0 THEN
                c_tries[ci] := 0;
                c_dirty[ci] := true;
            END IF;
            ai := array_position(a_ids, c_acct[ci]);
            v_acct[i] := c_acct[ci];
            IF ai IS NULL THEN
                v_code_i := '96';  -- the card's account is missing: a data error, not the customer's
            ELSIF p_froms[i] IS NOT NULL AND p_froms[i] <> c_acct[ci] THEN
                v_code_i := '57';
            ELSIF a_status[ai] <> 'active' OR a_kind[ai] <> 'customer' THEN
                v_code_i := '57';
            ELSIF a_cur[ai] <> p_currencies[i] THEN
                v_code_i := '12';
            ELSIF p_statics[i] IS NOT NULL THEN
                v_code_i := p_statics[i];
            ELSIF p_kinds[i] IN ('withdrawal', 'deposit') THEN
                h_idx := h_idx || i;
            ELSIF p_kinds[i] IN ('transfer', 'payee') THEN
                pi := array_position(a_ids, p_tos[i]);
                IF p_kinds[i] = 'transfer' AND EXISTS (
                        SELECT 1 FROM ledger_daily_counters d
                         WHERE d.counter_id = 'card:' || p_cards[i] || ':transfer'
                           AND d.day = p_days[i]
                           AND ((p_daily_max[i] IS NOT NULL AND d.amount + p_amounts[i] > p_daily_max[i])
                             OR (p_daily_count[i] IS NOT NULL AND d.count + 1 > p_daily_count[i]))) THEN
                    v_code_i := '61';  -- spec 6: daily limits come before the payee check
                ELSIF pi IS NULL OR a_kind[pi] <> 'customer' OR a_status[pi] <> 'active' THEN
                    v_code_i := '76';
                ELSIF p_kinds[i] = 'payee' THEN
                    v_code_i := '00';
                    v_info[i] := jsonb_build_object('name', a_name[pi]);
                ELSIF a_ids[pi] = c_acct[ci] THEN
                    v_code_i := '05';
                ELSIF a_cur[pi] <> a_cur[ai] THEN
                    v_code_i := '12';
                ELSE
                    t_idx := t_idx || i;
                END IF;
            ELSIF p_kinds[i] = 'pin_change' THEN
                UPDATE cards SET pin_verification = p_new_pins[i]::jsonb, pin_tries = 0,
                                 updated_at = now()
                 WHERE card_id = p_cards[i];
                c_tries[ci] := 0;
                c_version[ci] := c_version[ci] + 1;  -- later requests decided with the old PIN
                v_code_i := '00';
            ELSE  -- balance inquiry, mini statement
                v_code_i := '00';
            END IF;
        END IF;
        v_code[i] := v_code_i;
        -- The cryptogram passed and its ATC was recorded just above (the chain went past the
        -- chip step): the 0210 carries an ARPC whatever its field 39 (section 11).
        v_chip[i] := p_chips[i] = 'passed' AND EXISTS (
            SELECT 1 FROM card_chips WHERE card_id = p_cards[i] AND atc_accepted = p_atcs[i])
            AND v_code_i IS DISTINCT FROM '59';
    END LOOP;

    -- 6. Holds (withdrawals debit with the daily counter, deposits credit), one ledger call.
    IF cardinality(h_idx) > 0 THEN
        FOR lr IN SELECT * FROM ledger_hold_batch(
                ARRAY(SELECT p_ledger_keys[x] FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT p_ledger_fps[x] FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT v_acct[x] FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT NULL::text FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT p_amounts[x] FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT CASE WHEN p_kinds[x] = 'withdrawal' THEN 'debit' ELSE 'credit' END
                        FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT p_expires[x] FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT CASE WHEN p_kinds[x] = 'withdrawal' THEN 'capture' ELSE 'release' END
                        FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT CASE WHEN p_kinds[x] = 'withdrawal' THEN 'card:' || p_cards[x] END
                        FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT CASE WHEN p_kinds[x] = 'withdrawal' THEN p_days[x] END
                        FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT CASE WHEN p_kinds[x] = 'withdrawal' THEN p_daily_max[x] END
                        FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT CASE WHEN p_kinds[x] = 'withdrawal' THEN p_daily_count[x] END
                        FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT p_descriptions[x] FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT p_references[x] FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o))
        LOOP
            i := h_idx[lr.idx];
            v_code[i] := auth_ledger_code(lr.status);
            v_hold[i] := CASE WHEN lr.status = 'approved' THEN lr.hold_id END;
            v_lbal[i] := lr.ledger_balance;
            v_avail[i] := lr.ledger_balance - lr.held;
        END LOOP;
    END IF;

    -- 7. Transfers: debit and credit posted atomically, with the transfer counter.
    IF cardinality(t_idx) > 0 THEN
        FOR lr IN SELECT * FROM ledger_transfer_batch(
                ARRAY(SELECT p_ledger_keys[x] FROM unnest(t_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT p_ledger_fps[x] FROM unnest(t_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT v_acct[x] FROM unnest(t_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT p_tos[x] FROM unnest(t_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT p_amounts[x] FROM unnest(t_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT 'card:' || p_cards[x] || ':transfer'
                        FROM unnest(t_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT p_days[x] FROM unnest(t_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT p_daily_max[x] FROM unnest(t_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT p_daily_count[x] FROM unnest(t_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT p_descriptions[x] FROM unnest(t_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                ARRAY(SELECT p_references[x] FROM unnest(t_idx) WITH ORDINALITY u (x, o) ORDER BY o))
        LOOP
            i := t_idx[lr.idx];
            v_code[i] := CASE WHEN lr.status = 'account_not_found' THEN '76'
                              ELSE auth_ledger_code(lr.status) END;
            v_hold[i] := CASE WHEN lr.status = 'approved' THEN lr.hold_id END;
            v_lbal[i] := lr.ledger_balance;
            v_avail[i] := lr.ledger_balance - lr.held;
        END LOOP;
    END IF;

    -- 8. Try counters and blocks, one statement.
    UPDATE cards c SET pin_tries = u.tries, status = u.status, updated_at = now()
      FROM unnest(c_ids, c_tries, c_status, c_dirty) AS u (id, tries, status, dirty)
     WHERE u.dirty AND c.card_id = u.id;

    -- 9. Balances of approved inquiries (field 54) and the mini statement lines (48/MS).
    FOR i IN 1 .. n LOOP
        CONTINUE WHEN NOT v_claimed[i] OR v_status[i] <> 'new' OR v_code[i] IS DISTINCT FROM '00';
        IF v_lbal[i] IS NULL THEN
            SELECT a.balance, a.balance - a.held INTO v_balance, v_available
              FROM ledger_accounts a WHERE a.account_id = v_acct[i];
            v_lbal[i] := v_balance;
            v_avail[i] := v_available;
        END IF;
        IF p_kinds[i] = 'statement' THEN
            v_info[i] := (SELECT coalesce(jsonb_agg(jsonb_build_array(
                                      to_char(l.posted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                                      l.amount, l.description) ORDER BY l.leg_id DESC), '[]')
                            FROM (SELECT leg_id, posted_at, amount, description FROM ledger_legs
                                   WHERE account_id = v_acct[i]
                                   ORDER BY leg_id DESC LIMIT 10) AS l);
        END IF;
        v_cur[i] := p_currencies[i];
    END LOOP;

    -- 10. The decisions, one statement; stale claims are given back (nothing was decided).
    UPDATE auth_messages m
       SET response_code = u.code, hold_id = u.hold, ledger_balance = u.lbal,
           available_balance = u.avail, currency = u.cur, info = u.info, answered_at = now(),
           chip_passed = u.chip,
           effect = CASE WHEN u.hold IS NOT NULL THEN
                        jsonb_build_object('kind', m.kind, 'hold_id', u.hold, 'amount', m.amount_minor)
                    END
      FROM unnest(v_rec, v_code, v_hold, v_lbal, v_avail, v_cur, v_info, v_claimed, v_status,
                  v_chip)
           AS u (rec, code, hold, lbal, avail, cur, info, claimed, status, chip)
     WHERE u.claimed AND u.status = 'new' AND m.id = u.rec;
    DELETE FROM auth_messages m
     USING unnest(v_rec, v_claimed, v_status) AS u (rec, claimed, status)
     WHERE u.claimed AND u.status = 'stale' AND m.id = u.rec;

    RETURN QUERY
        SELECT u.idx::integer, u.status, u.code, u.rec, u.created, p_cards[u.idx], u.hold, u.lbal,
               u.avail, u.cur, u.info, u.chip
          FROM unnest(v_status, v_code, v_rec, v_created, v_hold, v_lbal, v_avail, v_cur, v_info,
                      v_chip)
               WITH ORDINALITY AS u (status, code, rec, created, hold, lbal, avail, cur, info, chip,
                                     idx);
END $$;
