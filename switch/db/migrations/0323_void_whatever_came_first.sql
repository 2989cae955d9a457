-- A 91 stands whatever advice came first (owner: switch/authorization).
--
-- Found by the 30-minute simulation (seed 20265028, docs/testing.md): a deposit's commit was
-- answered late, so the terminal was told 91; a 0420 of it, reason 32 with field 95 = 100.00,
-- was recorded before the switch's void, which then found the original "partially_reversed",
-- refused ("settled") and left the decision 00 with 100.00 posted. Migration 0321 refused a
-- void after "completed" and "partially_reversed" on the ground that the terminal acted on an
-- answer, but a terminal told only 91 was given no answer to act on: had a repeat been handed
-- the decision, repeat_answered would refuse the void. Spec 5.6: "a 91 never leaves a ledger
-- effect ... a reversal it sends anyway is answered 00 with no effect"; spec 10: "a 91 never
-- debits".
--
-- So a void also applies to "completed" and "partially_reversed" (the table in
-- switch/authorization/states.py): it records 91 and reverses what the advice posted
-- (captured minus reversed), as it already did for a presumed capture.

CREATE OR REPLACE FUNCTION auth_next_state(p_state text, p_event text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_state || '/' || p_event
        WHEN 'claimed/approve' THEN 'approved'
        WHEN 'claimed/decline' THEN 'declined'
        WHEN 'claimed/void' THEN 'voided'
        WHEN 'claimed/record' THEN 'recorded'
        WHEN 'approved/void' THEN 'voided'
        WHEN 'declined/void' THEN 'voided'
        WHEN 'reversed/void' THEN 'voided'
        WHEN 'released/void' THEN 'voided'
        WHEN 'presumed_captured/void' THEN 'voided'
        WHEN 'completed/void' THEN 'voided'
        WHEN 'partially_reversed/void' THEN 'voided'
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
        ELSIF o.state NOT IN ('claimed', 'approved', 'declined', 'reversed', 'released',
                              'presumed_captured', 'completed', 'partially_reversed') THEN
            RETURN NEXT 'settled';
        ELSIF o.repeat_answered THEN
            RETURN NEXT 'answered_to_repeat';
        ELSE
            IF o.state = 'approved' AND o.kind = 'pin_change' AND o.prior_pin IS NOT NULL THEN
                UPDATE cards SET pin_verification = o.prior_pin, updated_at = now()
                 WHERE card_id = o.card_id;
            END IF;
            IF o.state IN ('approved', 'presumed_captured', 'completed', 'partially_reversed')
               AND o.hold_id IS NOT NULL THEN
                SELECT * INTO h FROM ledger_holds WHERE hold_id = o.hold_id FOR UPDATE;
                PERFORM ledger_lock_accounts(ARRAY[h.account_id, h.counterparty_id]);
                PERFORM ledger_lock_hold_counters(ARRAY[h.hold_id]);
                IF h.state = 'open' THEN
                    lr := ledger_release_one(i, h.hold_id);
                ELSIF h.state = 'captured' AND h.captured_amount > h.reversed_amount THEN
                    -- a transfer, a hold the ledger's sweep presumed dispensed, or one an
                    -- advice posted (all or part) while the void was owed
                    lr := ledger_reverse_one(i, h.hold_id, h.captured_amount - h.reversed_amount);
                END IF;
            END IF;
            PERFORM auth_move(o.id, o.state, 'void');
            -- commit_seq stays the decision's: its effect was visible from then until
            -- now (the simulation's oracle replays it there, with the undo later).
            UPDATE auth_messages SET response_code = '91', answered_at = now(),
                                     commit_seq = coalesce(commit_seq,
                                                           nextval('auth_commit_seq')),
                                     effect = CASE WHEN effect IS NULL THEN NULL
                                                   ELSE effect || '{"voided": true}'::jsonb END
             WHERE id = o.id;
            RETURN NEXT 'voided';
        END IF;
    END LOOP;
END $$;

ALTER FUNCTION auth_void(text[], text[], text[], text[], text[], text[], bigint[], text[])
    SET plan_cache_mode = force_generic_plan;
