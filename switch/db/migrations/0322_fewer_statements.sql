-- Fewer statements per message (owner: switch/authorization; docs/performance.md, "Fewer
-- statements per message"). Measured per statement with timing marks around each statement
-- of the batch functions (engine_bench, batch size 1), the costly ones were shapes, not work:
--
-- * Both batches wrote their rows with INSERT ... RETURNING joined back to the batch's keys
--   (~140-160 us a call), then checked with one more query that every key got its row. Now
--   each row's id is taken from the sequence first and created_at is the transaction's time
--   (the column's default, now()), so nothing is read back; the row count checks the
--   invariant (a row under a key this batch holds the lock of is an error, AU001, as before).
-- * The 0200 batch built ledger_hold_batch's fourteen arguments with fourteen sub-queries
--   over its list of holds; it now appends them while it decides each request.
-- * The advice batch read its holds' ids, locked the holds, then read them twice more for
--   the accounts and counters to lock (two functions, three statements): the holds are now
--   read once, with their locks, and the accounts and counters locked from what was read.
-- * Every advice batch ran one INSERT ... ON CONFLICT DO UPDATE ... WHERE false per original,
--   to lock an existing original's row or to leave a marker for an unknown one, and then
--   deleted the markers of 0220s. Nearly always every original exists, so the statement only
--   locked rows. Now the lookup that reads each original locks it (SELECT ... FOR UPDATE,
--   under the original key's advisory lock as before: the lock order of migration 0320 is
--   unchanged), and the marker statement runs only for a 0420 whose original is unknown. A
--   0220 of an unknown original wrote a marker and deleted it again: it now writes nothing,
--   with the same result.

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
SET plan_cache_mode = force_generic_plan  -- see migration 0320
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
    v_prior jsonb[] := array_fill(NULL::jsonb, ARRAY[n]);  -- a PIN change's old PIN data
    v_seq bigint[] := array_fill(NULL::bigint, ARRAY[n]);   -- commit order, see step 10
    c_ids bigint[]; c_status text[]; c_expiry text[]; c_tries integer[]; c_version integer[];
    c_acct text[]; c_dirty boolean[];
    a_ids text[]; a_status text[]; a_cur text[]; a_kind text[]; a_name text[];
    h_idx integer[] := '{}';   -- requests that go to ledger_hold_batch
    -- ledger_hold_batch's arguments, one element per h_idx entry, appended in step 5
    h_keys text[] := '{}'; h_accts text[] := '{}'; h_cps text[] := '{}';
    h_amounts bigint[] := '{}'; h_dirs text[] := '{}'; h_expires timestamptz[] := '{}';
    h_actions text[] := '{}'; h_counters text[] := '{}'; h_days date[] := '{}';
    h_max bigint[] := '{}'; h_count bigint[] := '{}'; h_descrs text[] := '{}';
    h_refs text[] := '{}';
    v_new integer := 0;        -- rows step 10 writes
    v_rows integer;
    t_idx integer[] := '{}';   -- requests that go to ledger_transfer_batch
    r record;
    lr ledger_result;
    i integer; ci integer; ai integer; pi integer;
    v_code_i text;
    v_balance bigint; v_available bigint;
BEGIN
    -- 1. Take every key of the batch at once, in key order (auth_key_locks): whoever creates
    --    a 0200 key takes its lock first, so after this no one else can create these keys or
    --    act on their rows until this transaction ends. Nothing is written for the claim: the
    --    row is inserted once, decided, in step 10 (no insert-then-update).
    PERFORM auth_key_locks(p_terminals, p_stans, p_tdts, p_acqs);

    -- 2. Keys already answered: the stored decision again (spec 5.5), 94 for other content.
    --    A repeat never changes the decision; it only notes that a decision was handed out
    --    again, so the first attempt can no longer void it (auth_void).
    v_claimed := array_fill(true, ARRAY[n]);
    FOR r IN
        SELECT t.idx::integer AS idx, m.*
          FROM unnest(p_terminals, p_stans, p_tdts, p_acqs) WITH ORDINALITY
               AS t (term, stan, tdt, acq, idx)
         CROSS JOIN LATERAL (  -- by key, whatever the table's size looked like (see the end)
               SELECT * FROM auth_messages k WHERE k.message_class = '0200'
                  AND k.terminal_id = t.term AND k.stan = t.stan AND k.transmission_dt = t.tdt
                  AND k.acquirer_id = t.acq LIMIT 1) AS m
    LOOP
        v_claimed[r.idx] := false;
        v_rec[r.idx] := r.id;
        v_created[r.idx] := r.created_at;
        IF r.fingerprint <> p_fps[r.idx] THEN
            v_status[r.idx] := 'conflict';
            v_code[r.idx] := '94';
        ELSIF r.state = 'claimed' THEN
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
            IF r.state IN ('approved', 'declined') AND NOT r.repeat_answered THEN
                UPDATE auth_messages SET repeat_answered = true WHERE id = r.id;
            END IF;
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
                h_keys := h_keys || p_ledger_keys[i];
                h_accts := h_accts || v_acct[i];
                h_cps := h_cps || NULL::text;  -- the cash account of the currency
                h_amounts := h_amounts || p_amounts[i];
                h_expires := h_expires || p_expires[i];
                h_descrs := h_descrs || p_descriptions[i];
                h_refs := h_refs || p_references[i];
                IF p_kinds[i] = 'withdrawal' THEN  -- a debit, counted, captured at expiry
                    h_dirs := h_dirs || 'debit'::text;
                    h_actions := h_actions || 'capture'::text;
                    h_counters := h_counters || ('card:' || p_cards[i]);
                    h_days := h_days || p_days[i];
                    h_max := h_max || p_daily_max[i];
                    h_count := h_count || p_daily_count[i];
                ELSE                               -- a pending credit, released at expiry
                    h_dirs := h_dirs || 'credit'::text;
                    h_actions := h_actions || 'release'::text;
                    h_counters := h_counters || NULL::text;
                    h_days := h_days || NULL::date;
                    h_max := h_max || NULL::bigint;
                    h_count := h_count || NULL::bigint;
                END IF;
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
                -- Kept with the decision, so a void (the switch answered 91) puts it back.
                v_prior[i] := (SELECT pin_verification FROM cards WHERE card_id = p_cards[i]);
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
        v_seq[i] := nextval('auth_commit_seq');
        -- The cryptogram passed and its ATC was recorded just above (the chain went past the
        -- chip step): the 0210 carries an ARPC whatever its field 39 (section 11).
        IF p_chips[i] = 'passed' AND v_code_i IS DISTINCT FROM '59' THEN
            v_chip[i] := EXISTS (SELECT 1 FROM card_chips WHERE card_id = p_cards[i]
                                                            AND atc_accepted = p_atcs[i]);
        END IF;
    END LOOP;

    -- 6. Holds (withdrawals debit with the daily counter, deposits credit), one ledger call.
    IF cardinality(h_idx) > 0 THEN
        FOR lr IN SELECT * FROM ledger_hold_batch(
                h_keys, NULL::text[],  -- no ledger idempotency record: the message key is it (0106)
                h_accts, h_cps, h_amounts, h_dirs, h_expires, h_actions, h_counters, h_days,
                h_max, h_count, h_descrs, h_refs)
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
                NULL::text[],
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
    IF true = ANY (c_dirty) THEN
        UPDATE cards c SET pin_tries = u.tries, status = u.status, updated_at = now()
          FROM unnest(c_ids, c_tries, c_status, c_dirty) AS u (id, tries, status, dirty)
         WHERE u.dirty AND c.card_id = u.id;
    END IF;

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

    -- 10. The decisions, one INSERT: each new key's row is written once, already decided
    --     (the state machine's claimed -> approved | declined, taken in one step). commit_seq
    --     was taken in step 5, in decision order, while the card's and account's locks were
    --     held, so it orders conflicting messages as they committed. The row's id is taken
    --     here and created_at is the transaction's time (the column's default), so nothing
    --     has to be read back. A row that appears under a key this batch holds the lock of
    --     is a broken invariant (a writer that skipped auth_key_locks): the count shows it.
    FOR i IN 1 .. n LOOP
        CONTINUE WHEN NOT v_claimed[i] OR v_status[i] <> 'new';
        v_rec[i] := nextval('auth_messages_id_seq');
        v_created[i] := now();
        v_new := v_new + 1;
    END LOOP;
    INSERT INTO auth_messages AS m (
        id, created_at, message_class, terminal_id, stan, transmission_dt, acquirer_id,
        fingerprint, processing_code, amount_minor, state, token, card_id, kind, rrn,
        response_code, hold_id, ledger_balance, available_balance, currency, info,
        answered_at, chip_passed, prior_pin, commit_seq, effect)
    SELECT v_rec[u.i], v_created[u.i], '0200', p_terminals[u.i], p_stans[u.i], p_tdts[u.i],
           p_acqs[u.i], p_fps[u.i], p_pcs[u.i], p_amounts[u.i],
           auth_next_state('claimed', CASE WHEN v_code[u.i] = '00' THEN 'approve'
                                           ELSE 'decline' END),
           p_tokens[u.i], p_cards[u.i], p_kinds[u.i], p_rrns[u.i], v_code[u.i],
           v_hold[u.i], v_lbal[u.i], v_avail[u.i], v_cur[u.i], v_info[u.i], now(),
           v_chip[u.i], v_prior[u.i], v_seq[u.i],
           CASE WHEN v_hold[u.i] IS NOT NULL THEN
               jsonb_build_object('kind', p_kinds[u.i], 'hold_id', v_hold[u.i],
                                  'amount', p_amounts[u.i]) END
      FROM generate_subscripts(p_terminals, 1) AS u (i)
     WHERE v_claimed[u.i] AND v_status[u.i] = 'new'
     ORDER BY u.i
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    IF v_rows <> v_new THEN
        RAISE EXCEPTION 'auth: a 0200 key was created under another batch''s lock'
            USING ERRCODE = 'AU001';
    END IF;

    RETURN QUERY
        SELECT u.idx::integer, u.status, u.code, u.rec, u.created, p_cards[u.idx], u.hold, u.lbal,
               u.avail, u.cur, u.info, u.chip
          FROM unnest(v_status, v_code, v_rec, v_created, v_hold, v_lbal, v_avail, v_cur, v_info,
                      v_chip)
               WITH ORDINALITY AS u (status, code, rec, created, hold, lbal, avail, cur, info, chip,
                                     idx);
END $$;

CREATE OR REPLACE FUNCTION auth_advice_batch(
    p_classes text[], p_terminals text[], p_stans text[], p_tdts text[], p_acqs text[],
    p_fps text[], p_pcs text[], p_amounts bigint[], p_tokens text[], p_ostans text[],
    p_otdts text[], p_oacqs text[], p_actuals bigint[], p_rrns text[], p_reasons text[]
) RETURNS SETOF auth_result LANGUAGE plpgsql
SET enable_seqscan = off  -- every lookup is by key: see migration 0105
SET plan_cache_mode = force_generic_plan  -- see migration 0320
AS $$
DECLARE
    n integer := cardinality(p_terminals);
    v_status text[] := array_fill('new'::text, ARRAY[n]);
    v_code text[] := array_fill(NULL::text, ARRAY[n]);
    v_rec bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    v_created timestamptz[] := array_fill(NULL::timestamptz, ARRAY[n]);
    v_note jsonb[] := array_fill(NULL::jsonb, ARRAY[n]);
    v_claimed boolean[] := array_fill(false, ARRAY[n]);
    v_orig bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    v_network boolean[] := array_fill(false, ARRAY[n]);  -- the original went to a network
    v_seq bigint[] := array_fill(NULL::bigint, ARRAY[n]);  -- the order effects were applied
    v_holds bigint[];
    v_simple integer[];
    v_unknown integer[] := '{}';  -- 0420s whose original is unknown (step 4)
    v_new integer := 0;           -- rows step 8 writes
    v_accounts text[]; v_parties text[]; v_counters text[]; v_days date[];  -- step 5
    v_counted boolean;
    v_rows integer;
    o auth_messages;
    r record;
    i integer;
BEGIN
    -- 1. The advices' own keys, locked in advice-key order (their rows are written once, at
    --    the end, already recorded).
    PERFORM pg_advisory_xact_lock(l.id)
       FROM (SELECT DISTINCT hashtextextended(t.cls || ':' || t.term || ':' || t.stan || ':'
                                              || t.tdt || ':' || t.acq, 8583) AS id,
                    t.cls, t.term, t.stan, t.tdt, t.acq
               FROM unnest(p_classes, p_terminals, p_stans, p_tdts, p_acqs)
                    AS t (cls, term, stan, tdt, acq)) AS l
      ORDER BY l.cls, l.term, l.stan, l.tdt, l.acq;
    v_claimed := array_fill(true, ARRAY[n]);

    -- 2. Repeats (0221/0421 or a retransmission): answered again, no further effect.
    FOR r IN
        SELECT t.idx::integer AS idx, m.*
          FROM unnest(p_classes, p_terminals, p_stans, p_tdts, p_acqs) WITH ORDINALITY
               AS t (cls, term, stan, tdt, acq, idx)
         CROSS JOIN LATERAL (
               SELECT * FROM auth_messages k WHERE k.message_class = t.cls
                  AND k.terminal_id = t.term AND k.stan = t.stan AND k.transmission_dt = t.tdt
                  AND k.acquirer_id = t.acq LIMIT 1) AS m
    LOOP
        v_claimed[r.idx] := false;
        v_rec[r.idx] := r.id;
        v_created[r.idx] := r.created_at;
        IF r.fingerprint <> p_fps[r.idx] THEN
            v_status[r.idx] := 'conflict';
            v_code[r.idx] := '94';
        ELSIF r.state = 'claimed' THEN
            v_status[r.idx] := 'pending';
        ELSE
            v_status[r.idx] := 'repeat';
            v_code[r.idx] := r.response_code;
        END IF;
    END LOOP;

    -- 3. The originals' keys, locked in 0200-key order (the 0200 batch's order); then each
    --    advice's original row, locked (FOR UPDATE: the expiry sweep skips rows an advice
    --    holds), or why it has none to act on.
    PERFORM auth_key_locks(
        ARRAY(SELECT p_terminals[k] FROM generate_subscripts(p_terminals, 1) k WHERE v_claimed[k]),
        ARRAY(SELECT p_ostans[k] FROM generate_subscripts(p_terminals, 1) k WHERE v_claimed[k]),
        ARRAY(SELECT p_otdts[k] FROM generate_subscripts(p_terminals, 1) k WHERE v_claimed[k]),
        ARRAY(SELECT p_oacqs[k] FROM generate_subscripts(p_terminals, 1) k WHERE v_claimed[k]));
    FOR r IN
        SELECT t.idx::integer AS idx, p_classes[t.idx] AS cls, m.id, m.state, m.effect
          FROM unnest(p_terminals, p_ostans, p_otdts, p_oacqs) WITH ORDINALITY
               AS t (term, ostan, otdt, oacq, idx)
          LEFT JOIN LATERAL (
               SELECT k.id, k.state, k.effect FROM auth_messages k
                WHERE k.message_class = '0200' AND k.terminal_id = t.term AND k.stan = t.ostan
                  AND k.transmission_dt = t.otdt AND k.acquirer_id = t.oacq
                LIMIT 1 FOR UPDATE) AS m ON true
         WHERE v_claimed[t.idx]
         ORDER BY t.term, t.ostan, t.otdt, t.oacq
    LOOP
        IF r.id IS NULL OR r.state = 'marker' THEN
            v_note[r.idx] := jsonb_build_object('result', 'original_unknown');
            IF r.id IS NULL AND r.cls = '0420' THEN
                v_unknown := v_unknown || r.idx;
            END IF;
        ELSIF r.state = 'claimed' THEN
            v_status[r.idx] := 'pending';  -- still being decided: the advice is repeated
        ELSIF r.effect->>'kind' = 'network' THEN
            v_orig[r.idx] := r.id;  -- its effect is at the network (auth_network_advice)
            v_network[r.idx] := true;
        ELSE
            v_orig[r.idx] := r.id;
        END IF;
    END LOOP;

    -- 4. A reversal of an unknown original leaves a marker row under the original's key
    --    (spec 5.4: the late original is declined 94) and notes the reversal. A 0220 of an
    --    unknown original reserves nothing. Written only when there is one: the common
    --    batch, whose originals all exist, runs no statement for this step.
    IF cardinality(v_unknown) > 0 THEN
        FOR r IN
            WITH wanted AS (
                SELECT DISTINCT ON (t.term, t.ostan, t.otdt, t.oacq)
                       t.term, t.ostan, t.otdt, t.oacq, t.pc, t.amt, t.stan, t.rrn
                  FROM unnest(p_terminals, p_ostans, p_otdts, p_oacqs, p_pcs, p_amounts,
                              p_stans, p_rrns) WITH ORDINALITY
                       AS t (term, ostan, otdt, oacq, pc, amt, stan, rrn, idx)
                 WHERE t.idx = ANY (v_unknown)
                 ORDER BY t.term, t.ostan, t.otdt, t.oacq, t.idx),
            ins AS (
                INSERT INTO auth_messages AS m (message_class, terminal_id, stan,
                                                transmission_dt, acquirer_id, fingerprint,
                                                processing_code, amount_minor, state,
                                                response_code, reversed_by, rrn, answered_at)
                SELECT '0200', w.term, w.ostan, w.otdt, w.oacq, 'reversal-marker', w.pc, w.amt,
                       'marker', '94', w.stan, w.rrn, now()
                  FROM wanted w ORDER BY w.term, w.ostan, w.otdt, w.oacq
                ON CONFLICT DO NOTHING
                RETURNING m.terminal_id, m.stan, m.transmission_dt, m.acquirer_id, m.reversed_by)
            SELECT * FROM ins
        LOOP
            INSERT INTO reversal_markers (terminal_id, stan, transmission_dt, acquirer_id,
                                          reversal_stan)
            VALUES (r.terminal_id, r.stan, r.transmission_dt, r.acquirer_id, r.reversed_by)
            ON CONFLICT DO NOTHING;
        END LOOP;
    END IF;

    -- 5. The ledger's locks, in its order: holds, accounts, counters. The holds are read
    --    with their locks (one statement), so the accounts and counters to lock come from
    --    them without reading the holds again.
    SELECT coalesce(array_agg(s.hold_id), '{}'), coalesce(array_agg(s.account_id), '{}'),
           coalesce(array_agg(s.counterparty_id), '{}'), array_agg(s.counter_id),
           array_agg(s.counter_day), coalesce(bool_or(s.counted), false)
      INTO v_holds, v_accounts, v_parties, v_counters, v_days, v_counted
      FROM (SELECT h.hold_id, h.account_id, h.counterparty_id,
                   CASE WHEN h.counted THEN h.counter_id END AS counter_id, h.counter_day,
                   h.counted
              FROM ledger_holds h
             WHERE h.hold_id = ANY (ARRAY(SELECT m.hold_id FROM auth_messages m
                                           WHERE m.id = ANY (v_orig) AND m.hold_id IS NOT NULL))
             ORDER BY h.hold_id FOR UPDATE) AS s;
    IF cardinality(v_holds) > 0 THEN
        PERFORM 1 FROM ledger_accounts  -- as ledger_lock_accounts: customer accounts only
         WHERE account_id = ANY (v_accounts || v_parties) AND kind = 'customer'
         ORDER BY account_id FOR UPDATE;
        IF v_counted THEN  -- as ledger_lock_hold_counters
            PERFORM 1 FROM ledger_daily_counters c
             WHERE (c.counter_id, c.day) IN (SELECT t.cid, t.d FROM unnest(v_counters, v_days)
                                                 AS t (cid, d) WHERE t.cid IS NOT NULL)
             ORDER BY c.counter_id, c.day FOR UPDATE;
        END IF;
    END IF;

    -- 6. The common case, set-based: an advice whose original is named by no other advice of
    --    the batch, approved, with its hold still open (a 0220 after cash out, a 0420 after a
    --    failed dispense). These commute with everything else in the batch (captures and
    --    releases check no balance), so they are applied together after the others.
    v_simple := ARRAY(
        SELECT t.i FROM generate_subscripts(v_orig, 1) AS t (i)
         CROSS JOIN LATERAL (SELECT k.state, k.hold_id FROM auth_messages k
                              WHERE k.id = v_orig[t.i] LIMIT 1) AS m
         CROSS JOIN LATERAL (SELECT k.kind, k.state FROM ledger_holds k
                              WHERE k.hold_id = m.hold_id LIMIT 1) AS h
         WHERE v_claimed[t.i] AND v_status[t.i] = 'new' AND m.state = 'approved'
           AND h.kind = 'hold' AND h.state = 'open'
           AND NOT EXISTS (SELECT 1 FROM generate_subscripts(v_orig, 1) AS u (j)
                            WHERE u.j <> t.i AND v_orig[u.j] = v_orig[t.i])
         ORDER BY t.i);

    -- 7. Every other advice, one after the other in the batch's order, each reading its
    --    original as the previous one left it (two reversals of one original: the second
    --    finds the first one's result).
    FOR i IN 1 .. n LOOP
        CONTINUE WHEN NOT v_claimed[i] OR v_status[i] <> 'new' OR i = ANY (v_simple);
        v_code[i] := '00';
        v_seq[i] := nextval('auth_commit_seq');
        IF v_network[i] THEN
            v_note[i] := auth_network_advice(p_classes[i], p_stans[i], p_amounts[i],
                                             p_actuals[i], p_reasons[i], v_orig[i]);
        ELSIF v_orig[i] IS NOT NULL THEN
            v_note[i] := auth_apply_advice(i, p_classes[i], p_stans[i], p_amounts[i],
                                           p_actuals[i], v_orig[i]);
        END IF;
    END LOOP;
    IF cardinality(v_simple) > 0 THEN
        FOR r IN SELECT * FROM auth_settle_open_holds(v_simple, v_orig, p_classes, p_stans,
                                                      p_amounts, p_actuals) LOOP
            v_note[r.out_idx] := r.out_note;
        END LOOP;
        FOREACH i IN ARRAY v_simple LOOP
            v_code[i] := '00';
            v_seq[i] := nextval('auth_commit_seq');
        END LOOP;
    END IF;

    -- 8. The advices' rows, written once, recorded (an advice not recorded, 'pending',
    --    leaves no row: its repeat is processed afresh). Ids taken here and created_at the
    --    transaction's time (the column's default): nothing is read back (migration 0322).
    FOR i IN 1 .. n LOOP
        CONTINUE WHEN NOT v_claimed[i] OR v_status[i] <> 'new';
        v_rec[i] := nextval('auth_messages_id_seq');
        v_created[i] := now();
        v_new := v_new + 1;
    END LOOP;
    INSERT INTO auth_messages AS m (id, created_at, message_class, terminal_id, stan,
                                    transmission_dt, acquirer_id, fingerprint, processing_code,
                                    amount_minor, state, token, rrn, original_stan, reason,
                                    response_code, effect, answered_at, commit_seq)
    SELECT v_rec[u.i], v_created[u.i], p_classes[u.i], p_terminals[u.i], p_stans[u.i],
           p_tdts[u.i], p_acqs[u.i], p_fps[u.i], p_pcs[u.i], p_amounts[u.i],
           auth_next_state('claimed', 'record'), p_tokens[u.i], p_rrns[u.i], p_ostans[u.i],
           p_reasons[u.i], '00', v_note[u.i], now(), v_seq[u.i]
      FROM generate_subscripts(p_terminals, 1) AS u (i)
     WHERE v_claimed[u.i] AND v_status[u.i] = 'new'
     ORDER BY u.i
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    IF v_rows <> v_new THEN  -- a row under a key this batch holds the lock of
        RAISE EXCEPTION 'auth: an advice key was created under another batch''s lock'
            USING ERRCODE = 'AU001';
    END IF;

    RETURN QUERY
        SELECT u.idx::integer, u.status, u.code, u.rec, u.created, NULL::bigint, NULL::bigint,
               NULL::bigint, NULL::bigint, NULL::text, u.note, false
          FROM unnest(v_status, v_code, v_rec, v_created, v_note) WITH ORDINALITY
               AS u (status, code, rec, created, note, idx);
END $$;

