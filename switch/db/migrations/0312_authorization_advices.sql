-- auth_advice_batch and auth_void (owner: switch/authorization).
--
-- An advice (0220 completion, 0420 reversal) with a valid MAC is always answered 00 once it
-- is recorded (spec 5.3, 5.4); its effect on the original 0200 is applied at most once: the
-- advice's own key is claimed in the same transaction, and the original's hold state and its
-- reversed_by mark make a second, different advice find nothing left to do.

-- One advice's effect on its (locked) original and hold. Returns the note stored with it.
CREATE OR REPLACE FUNCTION auth_apply_advice(
    p_idx integer, p_class text, p_stan text, p_amount bigint, p_actual bigint,
    o auth_messages
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    h ledger_holds;
    lr ledger_result;
    v_target bigint;
    v_left bigint;
BEGIN
    IF o.response_code IS DISTINCT FROM '00' OR o.hold_id IS NULL THEN
        RETURN jsonb_build_object('result', 'no_effect', 'original_code', o.response_code);
    END IF;
    IF o.reversed_by IS NOT NULL THEN
        RETURN jsonb_build_object('result', 'already_reversed');
    END IF;
    SELECT * INTO h FROM ledger_holds WHERE hold_id = o.hold_id;
    IF p_class = '0220' THEN
        IF h.kind <> 'hold' THEN
            RETURN jsonb_build_object('result', 'no_effect');
        END IF;
        v_target := least(p_amount, h.amount);
        IF h.state = 'open' THEN
            lr := CASE WHEN v_target > 0 THEN ledger_capture_one(p_idx, h.hold_id, v_target)
                       ELSE ledger_release_one(p_idx, h.hold_id) END;
            RETURN jsonb_build_object('result', lr.status, 'captured', v_target);
        ELSIF h.state = 'captured' AND h.presumed AND h.reversed_amount = 0 THEN
            -- Spec 10, late completion: captured in full as presumed dispensed, then told a
            -- smaller amount: the difference goes back as a correcting entry (once: a second
            -- completion finds reversed_amount > 0; one captured by a 0220 is not presumed).
            v_left := h.captured_amount - v_target;
            IF v_left > 0 THEN
                lr := ledger_reverse_one(p_idx, h.hold_id, v_left);
                RETURN jsonb_build_object('result', 'late_completion_corrected', 'reversed', v_left);
            END IF;
            RETURN jsonb_build_object('result', 'already_captured');
        ELSIF h.state = 'captured' THEN
            RETURN jsonb_build_object('result', 'already_captured');
        END IF;
        RETURN jsonb_build_object('result', 'already_released');
    END IF;
    -- 0420: give back what was not dispensed (all, or all but field 95).
    v_target := least(coalesce(p_actual, 0), h.amount);
    UPDATE auth_messages SET reversed_by = p_stan,
                             effect = coalesce(effect, '{}'::jsonb) || jsonb_build_object('reversed_by', p_stan)
     WHERE id = o.id;
    IF h.state = 'open' THEN
        lr := CASE WHEN v_target > 0 THEN ledger_capture_one(p_idx, h.hold_id, v_target)
                   ELSE ledger_release_one(p_idx, h.hold_id) END;
        RETURN jsonb_build_object('result', lr.status, 'kept', v_target);
    ELSIF h.state = 'captured' THEN
        v_left := h.captured_amount - h.reversed_amount - v_target;
        IF v_left > 0 THEN
            lr := ledger_reverse_one(p_idx, h.hold_id, v_left);
            RETURN jsonb_build_object('result', lr.status, 'reversed', v_left);
        END IF;
        RETURN jsonb_build_object('result', 'nothing_to_reverse');
    END IF;
    RETURN jsonb_build_object('result', 'already_released');
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
    v_orig auth_messages[] := array_fill(NULL::auth_messages, ARRAY[n]);
    v_holds bigint[] := '{}';
    o auth_messages;
    r record;
    i integer;
BEGIN
    -- 1. Claim the advices' own keys (the caller sorted the batch by original key).
    FOR r IN
        WITH ins AS (
            INSERT INTO auth_messages AS m (message_class, terminal_id, stan, transmission_dt,
                                            acquirer_id, fingerprint, processing_code,
                                            amount_minor, state, token, rrn, original_stan,
                                            reason)
            SELECT t.cls, t.term, t.stan, t.tdt, t.acq, t.fp, t.pc, t.amt, 'done', t.tok,
                   t.rrn, t.ostan, t.reason
              FROM unnest(p_classes, p_terminals, p_stans, p_tdts, p_acqs, p_fps, p_pcs,
                          p_amounts, p_tokens, p_rrns, p_ostans, p_reasons) WITH ORDINALITY
                   AS t (cls, term, stan, tdt, acq, fp, pc, amt, tok, rrn, ostan, reason, idx)
             ORDER BY t.idx
            ON CONFLICT DO NOTHING
            RETURNING m.id, m.message_class, m.terminal_id, m.stan, m.transmission_dt,
                      m.acquirer_id, m.created_at)
        SELECT t.idx::integer AS idx, ins.id, ins.created_at
          FROM ins JOIN unnest(p_classes, p_terminals, p_stans, p_tdts, p_acqs) WITH ORDINALITY
                        AS t (cls, term, stan, tdt, acq, idx)
            ON ins.message_class = t.cls AND ins.terminal_id = t.term AND ins.stan = t.stan
           AND ins.transmission_dt = t.tdt AND ins.acquirer_id = t.acq
    LOOP
        v_claimed[r.idx] := true;
        v_rec[r.idx] := r.id;
        v_created[r.idx] := r.created_at;
    END LOOP;

    -- 2. Repeats (0221/0421 or a retransmission): answered again, no further effect.
    FOR r IN
        SELECT t.idx::integer AS idx, m.*
          FROM unnest(p_classes, p_terminals, p_stans, p_tdts, p_acqs) WITH ORDINALITY
               AS t (cls, term, stan, tdt, acq, idx)
          JOIN auth_messages m ON m.message_class = t.cls AND m.terminal_id = t.term
           AND m.stan = t.stan AND m.transmission_dt = t.tdt AND m.acquirer_id = t.acq
         WHERE NOT v_claimed[t.idx]
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
        END IF;
    END LOOP;
    FOR i IN 1 .. n LOOP
        IF NOT v_claimed[i] AND v_rec[i] IS NULL THEN
            v_status[i] := 'stale';
        END IF;
    END LOOP;

    -- 3. The originals, locked in key order. A reversal of an original still being decided
    --    waits for it on the key's index; one of an unknown original reserves its key so the
    --    late original is declined 94 (spec 5.4).
    FOR i IN 1 .. n LOOP
        CONTINUE WHEN NOT v_claimed[i];
        SELECT * INTO o FROM auth_messages
         WHERE message_class = '0200' AND terminal_id = p_terminals[i] AND stan = p_ostans[i]
           AND transmission_dt = p_otdts[i] AND acquirer_id = p_oacqs[i] FOR UPDATE;
        IF NOT FOUND AND p_classes[i] = '0420' THEN
            INSERT INTO auth_messages (message_class, terminal_id, stan, transmission_dt,
                                       acquirer_id, fingerprint, processing_code, amount_minor,
                                       state, response_code, reversed_by, rrn, answered_at)
            VALUES ('0200', p_terminals[i], p_ostans[i], p_otdts[i], p_oacqs[i],
                    'reversal-marker', p_pcs[i], p_amounts[i], 'marker', '94', p_stans[i],
                    p_rrns[i], now())
            ON CONFLICT DO NOTHING;
            IF FOUND THEN
                INSERT INTO reversal_markers (terminal_id, stan, transmission_dt, acquirer_id,
                                              reversal_stan)
                VALUES (p_terminals[i], p_ostans[i], p_otdts[i], p_oacqs[i], p_stans[i])
                ON CONFLICT DO NOTHING;
                v_note[i] := jsonb_build_object('result', 'original_unknown');
                CONTINUE;
            END IF;
            SELECT * INTO o FROM auth_messages   -- it committed while we waited
             WHERE message_class = '0200' AND terminal_id = p_terminals[i]
               AND stan = p_ostans[i] AND transmission_dt = p_otdts[i]
               AND acquirer_id = p_oacqs[i] FOR UPDATE;
        END IF;
        IF o.id IS NULL THEN
            v_note[i] := jsonb_build_object('result', 'original_unknown');
        ELSIF o.state = 'marker' THEN
            v_note[i] := jsonb_build_object('result', 'original_unknown');
        ELSIF o.state = 'pending' THEN
            v_status[i] := 'pending';
        ELSIF o.effect->>'kind' = 'network' THEN
            v_status[i] := 'network';
        ELSE
            v_orig[i] := o;
            IF o.hold_id IS NOT NULL THEN
                v_holds := v_holds || o.hold_id;
            END IF;
        END IF;
        o := NULL;
    END LOOP;

    -- 4. The ledger's locks, in its order: holds, accounts, counters.
    IF cardinality(v_holds) > 0 THEN
        PERFORM 1 FROM ledger_holds WHERE hold_id = ANY (v_holds) ORDER BY hold_id FOR UPDATE;
        PERFORM ledger_lock_accounts(ARRAY(
            SELECT account_id FROM ledger_holds WHERE hold_id = ANY (v_holds)
            UNION SELECT counterparty_id FROM ledger_holds WHERE hold_id = ANY (v_holds)));
        PERFORM ledger_lock_hold_counters(v_holds);
    END IF;

    -- 5. Effects, in order.
    FOR i IN 1 .. n LOOP
        CONTINUE WHEN NOT v_claimed[i] OR v_status[i] <> 'new';
        v_code[i] := '00';
        IF (v_orig[i]).id IS NOT NULL THEN
            v_note[i] := auth_apply_advice(i, p_classes[i], p_stans[i], p_amounts[i],
                                           p_actuals[i], v_orig[i]);
        END IF;
    END LOOP;

    UPDATE auth_messages m SET response_code = '00', effect = u.note, answered_at = now()
      FROM unnest(v_rec, v_note, v_claimed, v_status) AS u (rec, note, claimed, status)
     WHERE u.claimed AND u.status = 'new' AND m.id = u.rec;
    DELETE FROM auth_messages m
     USING unnest(v_rec, v_claimed, v_status) AS u (rec, claimed, status)
     WHERE u.claimed AND u.status <> 'new' AND m.id = u.rec;

    RETURN QUERY
        SELECT u.idx::integer, u.status, u.code, u.rec, u.created, NULL::bigint, NULL::bigint,
               NULL::bigint, NULL::bigint, NULL::text, u.note, false
          FROM unnest(v_status, v_code, v_rec, v_created, v_note) WITH ORDINALITY
               AS u (status, code, rec, created, note, idx);
END $$;

-- Spec 5.6 and 10, "a 91 never debits": the switch answered 91 to this request, so its
-- decision becomes 91 and whatever it reserved or moved goes back, in one transaction.
-- Only the holder of the token may do this: a repeat that was answered with the stored
-- decision took the token over, and then the decision stands.
CREATE OR REPLACE FUNCTION auth_void(
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
    FOR i IN 1 .. cardinality(p_terminals) LOOP
        INSERT INTO auth_messages (message_class, terminal_id, stan, transmission_dt, acquirer_id,
                                   fingerprint, processing_code, amount_minor, state,
                                   response_code, token, answered_at)
        VALUES ('0200', p_terminals[i], p_stans[i], p_tdts[i], p_acqs[i], p_fps[i], p_pcs[i],
                p_amounts[i], 'done', '91', p_tokens[i], now())
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            RETURN NEXT 'recorded';
            CONTINUE;
        END IF;
        SELECT * INTO o FROM auth_messages
         WHERE message_class = '0200' AND terminal_id = p_terminals[i] AND stan = p_stans[i]
           AND transmission_dt = p_tdts[i] AND acquirer_id = p_acqs[i] FOR UPDATE;
        IF o.token IS DISTINCT FROM p_tokens[i] OR o.state <> 'done' THEN
            RETURN NEXT 'taken_over';
            CONTINUE;
        END IF;
        IF o.response_code = '91' THEN
            RETURN NEXT 'already_91';
            CONTINUE;
        END IF;
        IF o.hold_id IS NOT NULL THEN
            SELECT * INTO h FROM ledger_holds WHERE hold_id = o.hold_id FOR UPDATE;
            PERFORM ledger_lock_accounts(ARRAY[h.account_id, h.counterparty_id]);
            PERFORM ledger_lock_hold_counters(ARRAY[h.hold_id]);
            IF h.state = 'open' THEN
                lr := ledger_release_one(i, h.hold_id);
            ELSIF h.state = 'captured' AND h.captured_amount > h.reversed_amount THEN
                lr := ledger_reverse_one(i, h.hold_id, h.captured_amount - h.reversed_amount);
            END IF;
        END IF;
        UPDATE auth_messages SET response_code = '91', answered_at = now(),
                                 effect = CASE WHEN effect IS NULL THEN NULL
                                               ELSE effect || '{"voided": true}'::jsonb END
         WHERE id = o.id;
        RETURN NEXT 'voided';
    END LOOP;
END $$;
