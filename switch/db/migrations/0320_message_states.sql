-- Authorization engine v3 (owner: switch/authorization; docs/authorization.md, "Message states").
--
-- One message state machine, written once in switch/authorization/states.py and mirrored
-- here by auth_next_state(state, event). Every transition of a row is a compare-and-set on
-- the state it is expected to be in (auth_move: UPDATE ... WHERE state = expected), never a
-- decision taken from a copy read earlier, so a stale snapshot cannot apply it.
--
-- Lock order, for every function here and for both batch classes:
--   advice keys (sorted) -> 0200 keys (sorted, one statement: auth_key_locks, advisory locks
--   on the keys' hashes; then their rows) -> cards (by id) -> holds (by id) -> customer
--   accounts (by id) -> daily counters (by counter, day).
-- The 0200 batch takes no advice key, so the order is the same for everyone and no two
-- batches can deadlock; the switch still retries 40P01 / 40001 (batches.py).

ALTER TABLE auth_messages DROP CONSTRAINT IF EXISTS auth_messages_state_check;
ALTER TABLE auth_messages
    -- A repeat was handed this decision again (spec 5.5): the first attempt may no longer
    -- void it, since the terminal may have acted on the repeat's answer.
    ADD COLUMN IF NOT EXISTS repeat_answered boolean NOT NULL DEFAULT false,
    -- A PIN change's previous PIN data: a void (the switch answered 91) puts it back.
    ADD COLUMN IF NOT EXISTS prior_pin jsonb,
    -- Taken while every lock of the deciding transaction is held: orders conflicting
    -- messages as they committed (the simulation's oracle replays the model in this order).
    ADD COLUMN IF NOT EXISTS commit_seq bigint;
CREATE SEQUENCE IF NOT EXISTS auth_commit_seq;

UPDATE auth_messages m SET state = CASE
        WHEN m.state = 'pending' THEN 'claimed'
        WHEN m.state = 'marker' THEN 'marker'
        WHEN m.message_class <> '0200' THEN 'recorded'
        WHEN m.response_code = '91' THEN 'voided'
        WHEN m.response_code IS DISTINCT FROM '00' THEN 'declined'
        WHEN m.reversed_by IS NOT NULL THEN 'reversed'
        ELSE coalesce((SELECT CASE WHEN h.state = 'captured' AND h.presumed THEN 'presumed_captured'
                                   WHEN h.state = 'captured' AND h.kind = 'hold' THEN 'completed'
                                   WHEN h.state = 'released' THEN 'released' END
                         FROM ledger_holds h WHERE h.hold_id = m.hold_id), 'approved') END;
ALTER TABLE auth_messages ALTER COLUMN state SET DEFAULT 'claimed';
ALTER TABLE auth_messages ADD CONSTRAINT auth_messages_state_check CHECK (state IN (
    'claimed', 'approved', 'declined', 'voided', 'completed', 'partially_reversed', 'reversed',
    'presumed_captured', 'released', 'marker', 'recorded'));
DROP INDEX IF EXISTS auth_messages_pending_idx;
CREATE INDEX IF NOT EXISTS auth_messages_claimed_idx ON auth_messages (created_at)
    WHERE state = 'claimed';
-- The hold expiry sweep finds the message of each expired hold by it.
CREATE INDEX IF NOT EXISTS auth_messages_hold_idx ON auth_messages (hold_id)
    WHERE hold_id IS NOT NULL;

-- The transition table of switch/authorization/states.py (tests/authorization/test_states.py
-- compares the two entry by entry). NULL: the event is not allowed in that state.
CREATE OR REPLACE FUNCTION auth_next_state(p_state text, p_event text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_state || '/' || p_event
        WHEN 'claimed/approve' THEN 'approved'
        WHEN 'claimed/decline' THEN 'declined'
        WHEN 'claimed/void' THEN 'voided'
        WHEN 'claimed/record' THEN 'recorded'
        WHEN 'approved/void' THEN 'voided'
        WHEN 'declined/void' THEN 'voided'
        WHEN 'approved/complete' THEN 'completed'
        WHEN 'approved/reverse_full' THEN 'reversed'
        WHEN 'approved/reverse_partial' THEN 'partially_reversed'
        WHEN 'approved/expire_capture' THEN 'presumed_captured'
        WHEN 'approved/expire_release' THEN 'released'
        WHEN 'presumed_captured/complete' THEN 'completed'
        WHEN 'presumed_captured/reverse_full' THEN 'reversed'
        WHEN 'presumed_captured/reverse_partial' THEN 'partially_reversed'
        WHEN 'completed/reverse_full' THEN 'reversed'
        WHEN 'completed/reverse_partial' THEN 'partially_reversed'
    END
$$;

-- The state a row answered with p_code takes (the card-network path records its answers so).
CREATE OR REPLACE FUNCTION auth_state_for(p_class text, p_code text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_class <> '0200' THEN 'recorded'
                WHEN p_code = '00' THEN 'approved'
                WHEN p_code = '91' THEN 'voided'
                ELSE 'declined' END
$$;

-- One transition of one row: a compare-and-set on the expected state. An event the table
-- does not allow, or a row no longer in p_from, is a broken invariant: the transaction fails.
CREATE OR REPLACE FUNCTION auth_move(p_id bigint, p_from text, p_event text,
                                     p_reversed_by text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_to text := auth_next_state(p_from, p_event);
BEGIN
    IF v_to IS NULL THEN
        RAISE EXCEPTION 'auth: % is not allowed in state %', p_event, p_from USING ERRCODE = 'AU001';
    END IF;
    UPDATE auth_messages
       SET state = v_to,
           reversed_by = coalesce(p_reversed_by, reversed_by),
           effect = CASE WHEN p_reversed_by IS NULL THEN effect
                         ELSE coalesce(effect, '{}'::jsonb)
                              || jsonb_build_object('reversed_by', p_reversed_by) END
     WHERE id = p_id AND state = p_from;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'auth: message % is not in state %', p_id, p_from USING ERRCODE = 'AU001';
    END IF;
    RETURN v_to;
END $$;

-- The lock of a 0200 key: a transaction-scoped advisory lock on the key's hash, taken in key
-- order by everyone who creates or changes a 0200 row (the 0200 batch, the advice batch for
-- originals and markers, auth_void, the card-network path's claim). A hash collision only
-- makes two keys wait for each other, never a wrong answer.
CREATE OR REPLACE FUNCTION auth_key_lock_id(p_terminal text, p_stan text, p_tdt text,
                                            p_acq text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT hashtextextended(p_terminal || ':' || p_stan || ':' || p_tdt || ':' || p_acq, 8583)
$$;

CREATE OR REPLACE FUNCTION auth_key_locks(p_terminals text[], p_stans text[], p_tdts text[],
                                          p_acqs text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(l.id)
       FROM (SELECT DISTINCT auth_key_lock_id(t.term, t.stan, t.tdt, t.acq) AS id,
                    t.term, t.stan, t.tdt, t.acq
               FROM unnest(p_terminals, p_stans, p_tdts, p_acqs) AS t (term, stan, tdt, acq)) AS l
      ORDER BY l.term, l.stan, l.tdt, l.acq;
END $$;

-- auth_financial_batch: every 0200 of a batch in one transaction (see migration 0311 for the
-- parameters). v3: keys taken in one pass; a repeat never changes the decision; every
-- decision is a compare-and-set from 'claimed'; a PIN change keeps its prior PIN data.
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
    v_prior jsonb[] := array_fill(NULL::jsonb, ARRAY[n]);  -- a PIN change's old PIN data
    v_seq bigint[] := array_fill(NULL::bigint, ARRAY[n]);   -- commit order, see step 10
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
                ARRAY(SELECT p_ledger_keys[x] FROM unnest(h_idx) WITH ORDINALITY u (x, o) ORDER BY o),
                NULL::text[],  -- no ledger idempotency record: the message key is it (0106)
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
    --     held, so it orders conflicting messages as they committed. A row that appears under
    --     a key this batch holds the lock of is a broken invariant (a writer that skipped
    --     auth_key_locks).
    FOR r IN
        WITH ins AS (
            INSERT INTO auth_messages AS m (
                message_class, terminal_id, stan, transmission_dt, acquirer_id, fingerprint,
                processing_code, amount_minor, state, token, card_id, kind, rrn, response_code,
                hold_id, ledger_balance, available_balance, currency, info, answered_at,
                chip_passed, prior_pin, commit_seq, effect)
            SELECT '0200', p_terminals[u.i], p_stans[u.i], p_tdts[u.i], p_acqs[u.i], p_fps[u.i],
                   p_pcs[u.i], p_amounts[u.i],
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
            ON CONFLICT DO NOTHING
            RETURNING m.id, m.terminal_id, m.stan, m.transmission_dt, m.acquirer_id,
                      m.created_at)
        SELECT t.idx::integer AS idx, ins.id, ins.created_at
          FROM ins JOIN unnest(p_terminals, p_stans, p_tdts, p_acqs) WITH ORDINALITY
                        AS t (term, stan, tdt, acq, idx)
            ON ins.terminal_id = t.term AND ins.stan = t.stan
           AND ins.transmission_dt = t.tdt AND ins.acquirer_id = t.acq
    LOOP
        v_rec[r.idx] := r.id;
        v_created[r.idx] := r.created_at;
    END LOOP;
    IF EXISTS (SELECT 1 FROM generate_subscripts(p_terminals, 1) AS u (i)
                WHERE v_claimed[u.i] AND v_status[u.i] = 'new' AND v_rec[u.i] IS NULL) THEN
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

-- One advice's effect on its original, read afresh under the lock the batch holds (so a
-- second advice of the same original in the same batch sees the first one's result: a
-- batch's outcome equals its items run one at a time in its order). Returns the note stored
-- with the advice.
CREATE OR REPLACE FUNCTION auth_apply_advice(
    p_idx integer, p_class text, p_stan text, p_amount bigint, p_actual bigint,
    p_original bigint
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    o auth_messages;
    h ledger_holds;
    lr ledger_result;
    v_kept bigint;
    v_left bigint;
    v_note jsonb;
BEGIN
    SELECT * INTO o FROM auth_messages WHERE id = p_original;
    IF o.state = 'marker' THEN
        RETURN jsonb_build_object('result', 'original_unknown');
    END IF;
    IF o.state NOT IN ('approved', 'completed', 'presumed_captured') OR o.hold_id IS NULL THEN
        RETURN jsonb_build_object('result', 'no_effect', 'original_code', o.response_code,
                                  'original_state', o.state);
    END IF;
    SELECT * INTO h FROM ledger_holds WHERE hold_id = o.hold_id;
    IF o.state = 'approved' AND h.kind = 'hold' AND h.state <> 'open' THEN
        -- Resolved by the ledger's own expiry sweep: the message follows its hold first.
        o.state := auth_move(o.id, o.state, CASE WHEN h.state = 'captured' THEN 'expire_capture'
                                                 ELSE 'expire_release' END);
        IF o.state = 'released' THEN
            RETURN jsonb_build_object('result', 'already_released');
        END IF;
    END IF;
    IF p_class = '0220' THEN
        IF h.kind <> 'hold' OR o.state = 'completed' THEN
            RETURN jsonb_build_object('result', 'no_effect', 'original_state', o.state);
        END IF;
        v_kept := least(p_amount, h.amount);
        IF o.state = 'approved' THEN
            lr := CASE WHEN v_kept > 0 THEN ledger_capture_one(p_idx, h.hold_id, v_kept)
                       ELSE ledger_release_one(p_idx, h.hold_id) END;
            v_note := jsonb_build_object('result', lr.status, 'captured', v_kept);
        ELSE
            -- Spec 10, late completion: captured in full as presumed dispensed, then told a
            -- smaller amount: the difference goes back, once (the row is then 'completed').
            v_left := h.captured_amount - h.reversed_amount - v_kept;
            IF v_left > 0 THEN
                lr := ledger_reverse_one(p_idx, h.hold_id, v_left);
                v_note := jsonb_build_object('result', 'late_completion_corrected',
                                             'reversed', v_left);
            ELSE
                v_note := jsonb_build_object('result', 'already_captured');
            END IF;
        END IF;
        PERFORM auth_move(o.id, o.state, 'complete');
        RETURN v_note;
    END IF;
    -- 0420: give back what was not dispensed (all, or all but field 95). At most one reversal
    -- takes effect: the row leaves the states this function acts on.
    v_kept := least(coalesce(p_actual, 0), h.amount);
    IF h.state = 'open' THEN
        lr := CASE WHEN v_kept > 0 THEN ledger_capture_one(p_idx, h.hold_id, v_kept)
                   ELSE ledger_release_one(p_idx, h.hold_id) END;
        v_note := jsonb_build_object('result', lr.status, 'kept', v_kept);
    ELSE
        v_left := h.captured_amount - h.reversed_amount - v_kept;
        IF v_left > 0 THEN
            lr := ledger_reverse_one(p_idx, h.hold_id, v_left);
            v_note := jsonb_build_object('result', lr.status, 'reversed', v_left);
        ELSE
            v_note := jsonb_build_object('result', 'nothing_to_reverse');
        END IF;
    END IF;
    PERFORM auth_move(o.id, o.state,
                      CASE WHEN v_kept > 0 THEN 'reverse_partial' ELSE 'reverse_full' END, p_stan);
    RETURN v_note;
END $$;

-- Completions and reversals of approved originals whose holds are open, all at once: one
-- statement per table (entries, legs, accounts, counters, holds, messages), the same effect
-- as ledger_capture_one / ledger_release_one and auth_move run for each in turn. The caller
-- holds every lock (originals, holds, accounts, counters) and has checked that each original
-- is named once, is 'approved' and has an open hold. Returns each advice's note.
CREATE OR REPLACE FUNCTION auth_settle_open_holds(
    p_items integer[], p_originals bigint[], p_classes text[], p_stans text[],
    p_amounts bigint[], p_actuals bigint[]
) RETURNS TABLE (out_idx integer, out_note jsonb) LANGUAGE plpgsql AS $$
DECLARE
    s_idx integer[]; s_msg bigint[]; s_hold bigint[]; s_acct text[]; s_cp text[];
    s_sign bigint[]; s_amount bigint[]; s_kept bigint[]; s_counted boolean[];
    s_counter text[]; s_day date[]; s_descr text[]; s_class text[]; s_stan text[];
    e_hold bigint[]; e_id bigint[];
    v_moved integer;
BEGIN
    SELECT array_agg(x.i ORDER BY x.hold_id), array_agg(x.mid ORDER BY x.hold_id),
           array_agg(x.hold_id ORDER BY x.hold_id), array_agg(x.account_id ORDER BY x.hold_id),
           array_agg(x.counterparty_id ORDER BY x.hold_id), array_agg(x.sign ORDER BY x.hold_id),
           array_agg(x.amount ORDER BY x.hold_id), array_agg(x.kept ORDER BY x.hold_id),
           array_agg(x.counted ORDER BY x.hold_id), array_agg(x.counter_id ORDER BY x.hold_id),
           array_agg(x.counter_day ORDER BY x.hold_id), array_agg(x.descr ORDER BY x.hold_id),
           array_agg(x.cls ORDER BY x.hold_id), array_agg(x.stan ORDER BY x.hold_id)
      INTO s_idx, s_msg, s_hold, s_acct, s_cp, s_sign, s_amount, s_kept, s_counted, s_counter,
           s_day, s_descr, s_class, s_stan
      FROM (SELECT t.i, m.id AS mid, h.hold_id, h.account_id, h.counterparty_id,
                   CASE WHEN h.direction = 'debit' THEN -1 ELSE 1 END AS sign, h.amount,
                   least(CASE WHEN p_classes[t.i] = '0220' THEN p_amounts[t.i]
                              ELSE coalesce(p_actuals[t.i], 0) END, h.amount) AS kept,
                   h.counted, h.counter_id, h.counter_day,
                   coalesce(h.description, CASE WHEN h.direction = 'debit'
                                                THEN 'ATM WITHDRAWAL' ELSE 'ATM DEPOSIT' END)
                       AS descr,
                   p_classes[t.i] AS cls, p_stans[t.i] AS stan
              FROM unnest(p_items) AS t (i)
             CROSS JOIN LATERAL (SELECT k.id, k.hold_id FROM auth_messages k
                                  WHERE k.id = p_originals[t.i] LIMIT 1) AS m
             CROSS JOIN LATERAL (SELECT * FROM ledger_holds k
                                  WHERE k.hold_id = m.hold_id LIMIT 1) AS h) AS x;

    -- The captured part is posted: one entry and two balanced legs per hold.
    WITH e AS (
        INSERT INTO ledger_entries (kind, hold_id, reconciliation)
        SELECT 'capture', u.h, false FROM unnest(s_hold, s_kept) AS u (h, k)
         WHERE u.k > 0 ORDER BY u.h
        RETURNING entry_id, hold_id)
    SELECT coalesce(array_agg(e.hold_id), '{}'), coalesce(array_agg(e.entry_id), '{}')
      INTO e_hold, e_id FROM e;
    INSERT INTO ledger_legs (entry_id, account_id, amount, description)
    SELECT x.id, leg.account_id, leg.amount, leg.descr
      FROM unnest(e_hold, e_id) AS x (h, id)
      JOIN unnest(s_hold, s_acct, s_cp, s_sign, s_kept, s_descr)
           AS u (h, acct, cp, sign, kept, descr) ON u.h = x.h
     CROSS JOIN LATERAL (VALUES (u.acct, u.sign * u.kept, u.descr),
                                (u.cp, -u.sign * u.kept, u.descr)) AS leg (account_id, amount, descr);

    -- Customer balances (both sides of each entry) and what the holds no longer reserve.
    UPDATE ledger_accounts a
       SET balance = a.balance + x.posted, held = a.held - x.held,
           pending_credit = a.pending_credit - x.pending
      FROM (SELECT account_id, sum(posted) AS posted, sum(held) AS held,
                   sum(pending) AS pending
              FROM (SELECT u.acct AS account_id, u.sign * u.kept AS posted,
                           CASE WHEN u.sign = -1 THEN u.amount ELSE 0 END AS held,
                           CASE WHEN u.sign = 1 THEN u.amount ELSE 0 END AS pending
                      FROM unnest(s_acct, s_sign, s_amount, s_kept) AS u (acct, sign, amount, kept)
                    UNION ALL
                    SELECT u.cp, -u.sign * u.kept, 0, 0
                      FROM unnest(s_cp, s_sign, s_kept) AS u (cp, sign, kept)
                     WHERE u.kept > 0) AS legs
             GROUP BY account_id) AS x
     WHERE a.account_id = x.account_id AND a.kind = 'customer';

    -- Daily counters keep only what was dispensed (spec 6); a hold that kept nothing no longer
    -- counts at all.
    UPDATE ledger_daily_counters c
       SET amount = c.amount - x.released, count = c.count - x.dropped
      FROM (SELECT u.cid, u.d, sum(u.amount - u.kept) AS released,
                   count(*) FILTER (WHERE u.kept = 0) AS dropped
              FROM unnest(s_counter, s_day, s_amount, s_kept, s_counted)
                   AS u (cid, d, amount, kept, counted)
             WHERE u.counted GROUP BY u.cid, u.d) AS x
     WHERE c.counter_id = x.cid AND c.day = x.d;

    -- By key (= ANY), not joined to the arrays: a join may scan every open hold.
    UPDATE ledger_holds h
       SET state = CASE WHEN s_kept[array_position(s_hold, h.hold_id)] > 0 THEN 'captured'
                        ELSE 'released' END,
           captured_amount = s_kept[array_position(s_hold, h.hold_id)],
           counted_amount = CASE WHEN h.counted THEN s_kept[array_position(s_hold, h.hold_id)]
                                 ELSE h.counted_amount END,
           counted = h.counted AND s_kept[array_position(s_hold, h.hold_id)] > 0,
           resolved_at = now()
     WHERE h.hold_id = ANY (s_hold) AND h.state = 'open';
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF v_moved <> cardinality(s_hold) THEN
        RAISE EXCEPTION 'auth: a hold left open before its advice' USING ERRCODE = 'AU001';
    END IF;

    -- Each original's transition, a compare-and-set from 'approved'.
    UPDATE auth_messages m
       SET state = auth_next_state('approved', CASE
                       WHEN u.cls = '0220' THEN 'complete'
                       WHEN u.kept > 0 THEN 'reverse_partial' ELSE 'reverse_full' END),
           reversed_by = CASE WHEN u.cls = '0420' THEN u.stan ELSE m.reversed_by END,
           effect = CASE WHEN u.cls = '0420'
                         THEN coalesce(m.effect, '{}'::jsonb)
                              || jsonb_build_object('reversed_by', u.stan)
                         ELSE m.effect END
      FROM unnest(s_msg, s_class, s_kept, s_stan) AS u (mid, cls, kept, stan)
     WHERE m.id = u.mid AND m.state = 'approved';
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF v_moved <> cardinality(s_msg) THEN
        RAISE EXCEPTION 'auth: an original left approved before its advice' USING ERRCODE = 'AU001';
    END IF;

    RETURN QUERY
        SELECT u.i, jsonb_build_object(
                   'result', CASE WHEN u.kept > 0 THEN 'captured' ELSE 'released' END,
                   CASE WHEN u.cls = '0220' THEN 'captured' ELSE 'kept' END, u.kept)
          FROM unnest(s_idx, s_class, s_kept) AS u (i, cls, kept);
END $$;

CREATE OR REPLACE FUNCTION auth_advice_batch(
    p_classes text[], p_terminals text[], p_stans text[], p_tdts text[], p_acqs text[],
    p_fps text[], p_pcs text[], p_amounts bigint[], p_tokens text[], p_ostans text[],
    p_otdts text[], p_oacqs text[], p_actuals bigint[], p_rrns text[], p_reasons text[]
) RETURNS SETOF auth_result LANGUAGE plpgsql
SET enable_seqscan = off  -- every lookup is by key: see migration 0105
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

    -- 3. The originals' keys, locked in 0200-key order (the 0200 batch's order), then in ONE
    --    statement: an existing row is locked, an unknown one gets a marker row (spec 5.4: a
    --    late original is declined 94). A 0220's unknown original reserves nothing: its
    --    marker is taken back at once.
    PERFORM auth_key_locks(
        ARRAY(SELECT p_terminals[k] FROM generate_subscripts(p_terminals, 1) k WHERE v_claimed[k]),
        ARRAY(SELECT p_ostans[k] FROM generate_subscripts(p_terminals, 1) k WHERE v_claimed[k]),
        ARRAY(SELECT p_otdts[k] FROM generate_subscripts(p_terminals, 1) k WHERE v_claimed[k]),
        ARRAY(SELECT p_oacqs[k] FROM generate_subscripts(p_terminals, 1) k WHERE v_claimed[k]));
    FOR r IN
        WITH wanted AS (
            SELECT DISTINCT ON (t.term, t.ostan, t.otdt, t.oacq)
                   t.term, t.ostan, t.otdt, t.oacq, t.pc, t.amt, t.stan, t.rrn,
                   bool_or(t.cls = '0420') OVER (PARTITION BY t.term, t.ostan, t.otdt, t.oacq)
                       AS reversal
              FROM unnest(p_classes, p_terminals, p_ostans, p_otdts, p_oacqs, p_pcs, p_amounts,
                          p_stans, p_rrns) WITH ORDINALITY
                   AS t (cls, term, ostan, otdt, oacq, pc, amt, stan, rrn, idx)
             WHERE v_claimed[t.idx]
             ORDER BY t.term, t.ostan, t.otdt, t.oacq, t.cls <> '0420', t.idx),
        ins AS (
            INSERT INTO auth_messages AS m (message_class, terminal_id, stan, transmission_dt,
                                            acquirer_id, fingerprint, processing_code,
                                            amount_minor, state, response_code, reversed_by,
                                            rrn, answered_at)
            SELECT '0200', w.term, w.ostan, w.otdt, w.oacq, 'reversal-marker', w.pc, w.amt,
                   'marker', '94', w.stan, w.rrn, now()
              FROM wanted w ORDER BY w.term, w.ostan, w.otdt, w.oacq
            ON CONFLICT (message_class, terminal_id, stan, transmission_dt, acquirer_id)
               DO UPDATE SET state = m.state WHERE false
            RETURNING m.id, m.terminal_id, m.stan, m.transmission_dt, m.acquirer_id)
        SELECT w.term, w.ostan, w.otdt, w.oacq, w.stan, w.reversal, ins.id AS marker_id
          FROM wanted w LEFT JOIN ins ON ins.terminal_id = w.term AND ins.stan = w.ostan
           AND ins.transmission_dt = w.otdt AND ins.acquirer_id = w.oacq
    LOOP
        CONTINUE WHEN r.marker_id IS NULL;
        IF r.reversal THEN
            INSERT INTO reversal_markers (terminal_id, stan, transmission_dt, acquirer_id,
                                          reversal_stan)
            VALUES (r.term, r.ostan, r.otdt, r.oacq, r.stan) ON CONFLICT DO NOTHING;
        ELSE
            DELETE FROM auth_messages WHERE id = r.marker_id;
        END IF;
    END LOOP;

    -- 4. Each advice's original (locked above), or why it has none to act on.
    FOR r IN
        SELECT t.idx::integer AS idx, m.id, m.state, m.effect
          FROM unnest(p_terminals, p_ostans, p_otdts, p_oacqs) WITH ORDINALITY
               AS t (term, ostan, otdt, oacq, idx)
          LEFT JOIN LATERAL (
               SELECT k.id, k.state, k.effect FROM auth_messages k
                WHERE k.message_class = '0200' AND k.terminal_id = t.term AND k.stan = t.ostan
                  AND k.transmission_dt = t.otdt AND k.acquirer_id = t.oacq LIMIT 1) AS m ON true
         WHERE v_claimed[t.idx]
    LOOP
        IF r.id IS NULL OR r.state = 'marker' THEN
            v_note[r.idx] := jsonb_build_object('result', 'original_unknown');
        ELSIF r.state = 'claimed' THEN
            v_status[r.idx] := 'pending';  -- still being decided: the advice is repeated
        ELSIF r.effect->>'kind' = 'network' THEN
            v_orig[r.idx] := r.id;  -- its effect is at the network (auth_network_advice)
            v_network[r.idx] := true;
        ELSE
            v_orig[r.idx] := r.id;
        END IF;
    END LOOP;

    -- 5. The ledger's locks, in its order: holds, accounts, counters.
    v_holds := ARRAY(SELECT hold_id FROM auth_messages
                      WHERE id = ANY (v_orig) AND hold_id IS NOT NULL);
    IF cardinality(v_holds) > 0 THEN
        PERFORM 1 FROM ledger_holds WHERE hold_id = ANY (v_holds) ORDER BY hold_id FOR UPDATE;
        PERFORM ledger_lock_accounts(ARRAY(
            SELECT account_id FROM ledger_holds WHERE hold_id = ANY (v_holds)
            UNION SELECT counterparty_id FROM ledger_holds WHERE hold_id = ANY (v_holds)));
        PERFORM ledger_lock_hold_counters(v_holds);
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
    --    leaves no row: its repeat is processed afresh).
    FOR r IN
        WITH ins AS (
            INSERT INTO auth_messages AS m (message_class, terminal_id, stan, transmission_dt,
                                            acquirer_id, fingerprint, processing_code,
                                            amount_minor, state, token, rrn, original_stan,
                                            reason, response_code, effect, answered_at,
                                            commit_seq)
            SELECT p_classes[u.i], p_terminals[u.i], p_stans[u.i], p_tdts[u.i], p_acqs[u.i],
                   p_fps[u.i], p_pcs[u.i], p_amounts[u.i], auth_next_state('claimed', 'record'),
                   p_tokens[u.i], p_rrns[u.i], p_ostans[u.i], p_reasons[u.i], '00', v_note[u.i],
                   now(), v_seq[u.i]
              FROM generate_subscripts(p_terminals, 1) AS u (i)
             WHERE v_claimed[u.i] AND v_status[u.i] = 'new'
             ORDER BY u.i
            ON CONFLICT DO NOTHING
            RETURNING m.id, m.message_class, m.terminal_id, m.stan, m.transmission_dt,
                      m.acquirer_id, m.created_at)
        SELECT t.idx::integer AS idx, ins.id, ins.created_at
          FROM ins JOIN unnest(p_classes, p_terminals, p_stans, p_tdts, p_acqs) WITH ORDINALITY
                        AS t (cls, term, stan, tdt, acq, idx)
            ON ins.message_class = t.cls AND ins.terminal_id = t.term AND ins.stan = t.stan
           AND ins.transmission_dt = t.tdt AND ins.acquirer_id = t.acq
    LOOP
        v_rec[r.idx] := r.id;
        v_created[r.idx] := r.created_at;
    END LOOP;
    IF EXISTS (SELECT 1 FROM generate_subscripts(p_terminals, 1) AS u (i)
                WHERE v_claimed[u.i] AND v_status[u.i] = 'new' AND v_rec[u.i] IS NULL) THEN
        RAISE EXCEPTION 'auth: an advice key was created under another batch''s lock'
            USING ERRCODE = 'AU001';
    END IF;

    RETURN QUERY
        SELECT u.idx::integer, u.status, u.code, u.rec, u.created, NULL::bigint, NULL::bigint,
               NULL::bigint, NULL::bigint, NULL::text, u.note, false
          FROM unnest(v_status, v_code, v_rec, v_created, v_note) WITH ORDINALITY
               AS u (status, code, rec, created, note, idx);
END $$;

-- Spec 5.6 and 10, "a 91 never debits": the switch answered 91 to this request, so its
-- decision becomes 91 and whatever it reserved or moved goes back, in one transaction.
-- Only for the attempt that made the claim (its token), only while the decision is still the
-- first one (approved / declined, or a claim still undecided), and only if no repeat was
-- handed the decision meanwhile. Results, one per request in order:
--   recorded           no row yet: the key is now taken as 91 (a late batch finds it)
--   voided             the decision became 91, its effect undone
--   already_voided     nothing to do
--   not_this_attempt   another attempt's claim (a repeat never voids)
--   answered_to_repeat a repeat was given the decision: it stands
--   settled            an advice acted on it already (completed, reversed ...): it stands
DROP FUNCTION IF EXISTS auth_void(text[], text[], text[], text[], text[], text[], bigint[], text[]);
CREATE FUNCTION auth_void(
    p_terminals text[], p_stans text[], p_tdts text[], p_acqs text[], p_fps text[],
    p_pcs text[], p_amounts bigint[], p_tokens text[]
) RETURNS SETOF text LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    i integer;
    o auth_messages;
    h ledger_holds;
    lr ledger_result;
BEGIN
    PERFORM auth_key_locks(p_terminals, p_stans, p_tdts, p_acqs);
    FOR i IN 1 .. cardinality(p_terminals) LOOP
        INSERT INTO auth_messages AS m (message_class, terminal_id, stan, transmission_dt,
                                        acquirer_id, fingerprint, processing_code, amount_minor,
                                        state, response_code, token, answered_at, commit_seq)
        VALUES ('0200', p_terminals[i], p_stans[i], p_tdts[i], p_acqs[i], p_fps[i], p_pcs[i],
                p_amounts[i], 'voided', '91', p_tokens[i], now(), nextval('auth_commit_seq'))
        ON CONFLICT (message_class, terminal_id, stan, transmission_dt, acquirer_id)
           DO UPDATE SET state = m.state WHERE false;
        IF FOUND THEN
            RETURN NEXT 'recorded';
            CONTINUE;
        END IF;
        SELECT * INTO o FROM auth_messages
         WHERE message_class = '0200' AND terminal_id = p_terminals[i] AND stan = p_stans[i]
           AND transmission_dt = p_tdts[i] AND acquirer_id = p_acqs[i];
        IF o.token IS DISTINCT FROM p_tokens[i] THEN
            RETURN NEXT 'not_this_attempt';
        ELSIF o.state = 'voided' THEN
            RETURN NEXT 'already_voided';
        ELSIF o.state NOT IN ('claimed', 'approved', 'declined') THEN
            RETURN NEXT 'settled';
        ELSIF o.repeat_answered THEN
            RETURN NEXT 'answered_to_repeat';
        ELSE
            IF o.state = 'approved' AND o.kind = 'pin_change' AND o.prior_pin IS NOT NULL THEN
                UPDATE cards SET pin_verification = o.prior_pin, updated_at = now()
                 WHERE card_id = o.card_id;
            END IF;
            IF o.state = 'approved' AND o.hold_id IS NOT NULL THEN
                SELECT * INTO h FROM ledger_holds WHERE hold_id = o.hold_id FOR UPDATE;
                PERFORM ledger_lock_accounts(ARRAY[h.account_id, h.counterparty_id]);
                PERFORM ledger_lock_hold_counters(ARRAY[h.hold_id]);
                IF h.state = 'open' THEN
                    lr := ledger_release_one(i, h.hold_id);
                ELSIF h.state = 'captured' AND h.captured_amount > h.reversed_amount THEN
                    -- a transfer, or a hold the ledger's sweep presumed dispensed
                    lr := ledger_reverse_one(i, h.hold_id, h.captured_amount - h.reversed_amount);
                END IF;
            END IF;
            PERFORM auth_move(o.id, o.state, 'void');
            UPDATE auth_messages SET response_code = '91', answered_at = now(),
                                     commit_seq = nextval('auth_commit_seq'),
                                     effect = CASE WHEN effect IS NULL THEN NULL
                                                   ELSE effect || '{"voided": true}'::jsonb END
             WHERE id = o.id;
            RETURN NEXT 'voided';
        END IF;
    END LOOP;
END $$;

-- Spec 5.2: expired holds of approved 0200s, resolved together with their message (a
-- withdrawal presumed dispensed, a deposit released; both listed for reconciliation).
-- Messages another process is resolving are skipped, so each is resolved exactly once.
-- Holds without a message (the Ledger API's own) are left to ledger_sweep_expired.
CREATE OR REPLACE FUNCTION auth_sweep_expired(p_now timestamptz, p_limit integer)
RETURNS integer LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    v_ids bigint[];
    v_holds bigint[];
    r record;
BEGIN
    SELECT coalesce(array_agg(s.id), '{}'), coalesce(array_agg(s.hold_id), '{}')
      INTO v_ids, v_holds
      FROM (SELECT m.id, m.hold_id FROM ledger_holds h
              JOIN auth_messages m ON m.hold_id = h.hold_id
             WHERE h.state = 'open' AND h.expires_at <= p_now AND h.kind = 'hold'
               AND m.message_class = '0200' AND m.state = 'approved'
             ORDER BY m.terminal_id, m.stan, m.transmission_dt, m.acquirer_id
             LIMIT p_limit FOR UPDATE OF m SKIP LOCKED) AS s;
    IF cardinality(v_ids) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM ledger_holds WHERE hold_id = ANY (v_holds) ORDER BY hold_id FOR UPDATE;
    PERFORM ledger_lock_accounts(ARRAY(
        SELECT account_id FROM ledger_holds WHERE hold_id = ANY (v_holds)
        UNION SELECT counterparty_id FROM ledger_holds WHERE hold_id = ANY (v_holds)));
    PERFORM ledger_lock_hold_counters(v_holds);
    FOR r IN SELECT m.id, h AS hold FROM auth_messages m JOIN ledger_holds h USING (hold_id)
              WHERE m.id = ANY (v_ids) AND h.state = 'open' ORDER BY m.id LOOP
        IF (r.hold).expiry_action = 'capture' THEN
            PERFORM ledger_close_hold(r.hold, (r.hold).amount, true, true);
            PERFORM auth_move(r.id, 'approved', 'expire_capture');
        ELSE
            PERFORM ledger_close_hold(r.hold, 0, false, true);
            PERFORM auth_move(r.id, 'approved', 'expire_release');
        END IF;
    END LOOP;
    RETURN cardinality(v_ids);
END $$;

-- Plans. Every statement of these functions looks rows up by key from arrays of the batch,
-- so one plan (index lookups, nested loops) is right at every batch size. Left to "auto",
-- PostgreSQL planned most statements afresh on every call (custom plans whose estimates
-- depend on the array sizes), which was most of a one-item batch's cost: measured with
-- track_functions over 512 one-item batches, the functions' total time fell by 40-55% with
-- generic plans (docs/performance.md, "Engine v3"). Set per function, not per session: the
-- rest of the switch's statements keep PostgreSQL's choice.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
              WHERE p.proname IN ('auth_financial_batch', 'auth_advice_batch',
                                  'auth_settle_open_holds', 'auth_apply_advice', 'auth_void',
                                  'auth_sweep_expired', 'auth_key_locks', 'ledger_hold_batch',
                                  'ledger_transfer_batch', 'ledger_lock_accounts',
                                  'ledger_lock_hold_counters')
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET plan_cache_mode = force_generic_plan',
                       r.signature);
    END LOOP;
END $$;
