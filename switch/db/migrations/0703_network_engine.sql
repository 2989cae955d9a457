-- Engine v3, card-network requests (docs/authorization.md "Card-network requests",
-- docs/networks.md): a 0200 for a card not on file is claimed by the engine, asked of the
-- network outside any transaction, and its answer recorded by a compare-and-set from
-- 'claimed'. Advices of such a request are recorded by the advice batch, which queues what
-- the network must be told in the same transaction (auth_network_advice).

-- Claims for network-routed 0200s, one row per request of the batch, in the order given.
-- Status per request:
--   claimed   the key is now this attempt's ('claimed', effect kind 'network')
--   repeat    an answered key, same content: its stored code and fields (spec 5.5)
--   conflict  the key with other content: 94, nothing recorded
--   pending   another attempt's claim still being decided: 91
--   on_file   the PAN is a card on file (the cache missed it): the caller takes the on-us
--             path, which checks chip data, PIN tries and the ledger
CREATE OR REPLACE FUNCTION auth_network_claim(
    p_terminals text[], p_stans text[], p_tdts text[], p_acqs text[], p_fps text[],
    p_pcs text[], p_amounts bigint[], p_tokens text[], p_pan_hashes text[], p_rrns text[]
) RETURNS TABLE (out_idx integer, out_status text, out_code text, out_record bigint,
                 out_created timestamptz, out_fields jsonb)
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    i integer;
    m auth_messages;
BEGIN
    PERFORM auth_key_locks(p_terminals, p_stans, p_tdts, p_acqs);
    FOR i IN 1 .. cardinality(p_terminals) LOOP
        out_idx := i;
        out_code := NULL;
        out_fields := NULL;
        SELECT * INTO m FROM auth_messages
         WHERE message_class = '0200' AND terminal_id = p_terminals[i] AND stan = p_stans[i]
           AND transmission_dt = p_tdts[i] AND acquirer_id = p_acqs[i];
        IF FOUND THEN
            out_record := m.id;
            out_created := m.created_at;
            IF m.fingerprint <> p_fps[i] THEN
                out_status := 'conflict';
                out_code := '94';
            ELSIF m.state = 'claimed' THEN
                out_status := 'pending';
            ELSE
                out_status := 'repeat';
                out_code := m.response_code;
                out_fields := m.response_fields;
                IF NOT m.repeat_answered THEN  -- the decision now stands (auth_void)
                    UPDATE auth_messages SET repeat_answered = true WHERE id = m.id;
                END IF;
            END IF;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF EXISTS (SELECT 1 FROM cards WHERE pan_hash = p_pan_hashes[i]) THEN
            out_status := 'on_file';
            out_record := NULL;
            out_created := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        INSERT INTO auth_messages (message_class, terminal_id, stan, transmission_dt,
                                   acquirer_id, fingerprint, processing_code, amount_minor,
                                   state, token, rrn, kind, effect)
        VALUES ('0200', p_terminals[i], p_stans[i], p_tdts[i], p_acqs[i], p_fps[i], p_pcs[i],
                p_amounts[i], 'claimed', p_tokens[i], p_rrns[i], 'network',
                '{"kind": "network"}'::jsonb)
        RETURNING id, created_at INTO out_record, out_created;
        out_status := 'claimed';
        RETURN NEXT;
    END LOOP;
END $$;

-- The network's answer (or the switch's own decision for the request: 14, 92, 55 ...),
-- recorded by a compare-and-set from 'claimed' for the attempt that claimed it. Results:
--   recorded  the decision is stored; repeats get it
--   lost      the claim is no longer this attempt's undecided claim (the sweeper voided a
--             claim it thought dead): the caller answers 91 and a network approval is
--             reversed (auth_network_unanswered_approvals finds it)
CREATE OR REPLACE FUNCTION auth_network_record(
    p_terminal text, p_stan text, p_tdt text, p_acq text, p_token text, p_code text,
    p_fields jsonb, p_effect jsonb
) RETURNS text LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM auth_key_locks(ARRAY[p_terminal], ARRAY[p_stan], ARRAY[p_tdt], ARRAY[p_acq]);
    UPDATE auth_messages
       SET state = auth_next_state('claimed', CASE p_code WHEN '00' THEN 'approve'
                                                          WHEN '91' THEN 'void'
                                                          ELSE 'decline' END),
           response_code = p_code, response_fields = p_fields,
           effect = coalesce(effect, '{}'::jsonb) || coalesce(p_effect, '{}'::jsonb),
           answered_at = now(), commit_seq = nextval('auth_commit_seq')
     WHERE message_class = '0200' AND terminal_id = p_terminal AND stan = p_stan
       AND transmission_dt = p_tdt AND acquirer_id = p_acq
       AND state = 'claimed' AND token = p_token
    RETURNING id INTO v_id;
    RETURN CASE WHEN v_id IS NULL THEN 'lost' ELSE 'recorded' END;
END $$;

-- One advice (0220 / 0420) of a network-routed original, inside auth_advice_batch (which
-- holds the original's key lock): the original's transition as a compare-and-set, and what
-- the network must be told queued in the same transaction (store-and-forward delivers it).
--   0420                 -> a reversal of the network transaction (95 = what was dispensed)
--   0220, approved       -> a completion for the dispensed amount
--   0220, stand-in       -> nothing when all was dispensed (the stand-in advice said so),
--                           else a reversal keeping what was dispensed (reason 32)
-- An original that is not approved, or already completed (0220) or reversed, has no effect.
CREATE OR REPLACE FUNCTION auth_network_advice(
    p_class text, p_stan text, p_amount bigint, p_actual bigint, p_reason text,
    p_original bigint
) RETURNS jsonb LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    o auth_messages;
    t network_transactions;
    v_kind text;
    v_amount bigint;
    v_actual bigint;
    v_reason text;
    v_event text;
    v_queued bigint;
BEGIN
    SELECT * INTO o FROM auth_messages WHERE id = p_original;
    IF o.state NOT IN ('approved', 'completed') OR (p_class = '0220' AND o.state <> 'approved')
    THEN
        RETURN jsonb_build_object('result', 'no_effect', 'original_state', o.state);
    END IF;
    SELECT * INTO t FROM network_transactions
     WHERE transaction_id = (o.effect->>'transaction_id')::bigint FOR UPDATE;
    IF NOT FOUND OR t.state NOT IN ('approved', 'stand_in') THEN
        RETURN jsonb_build_object('result', 'no_effect', 'network_state', t.state);
    END IF;
    IF p_class = '0420' THEN
        v_kind := 'reversal';
        v_amount := t.amount_minor;
        v_actual := p_actual;
        v_reason := p_reason;
        v_event := CASE WHEN coalesce(p_actual, 0) > 0 THEN 'reverse_partial'
                        ELSE 'reverse_full' END;
    ELSIF t.state = 'stand_in' AND p_amount >= t.amount_minor THEN
        PERFORM auth_move(o.id, o.state, 'complete');
        RETURN jsonb_build_object('result', 'stand_in_advice_covers_it',
                                  'network', t.network);
    ELSIF t.state = 'stand_in' THEN
        v_kind := 'reversal';
        v_amount := t.amount_minor;
        v_actual := p_amount;
        v_reason := '32';
        v_event := 'complete';
    ELSE
        v_kind := 'completion';
        v_amount := least(p_amount, t.amount_minor);
        v_event := 'complete';
    END IF;
    INSERT INTO network_advices (transaction_id, network, kind, amount_minor,
                                 actual_amount_minor, reason_code)
    VALUES (t.transaction_id, t.network, v_kind, v_amount, v_actual, v_reason)
    ON CONFLICT (transaction_id, kind) DO NOTHING
    RETURNING advice_id INTO v_queued;
    PERFORM auth_move(o.id, o.state, v_event);
    IF p_class = '0420' THEN
        UPDATE auth_messages SET reversed_by = p_stan,
                                 effect = effect || jsonb_build_object('reversed_by', p_stan)
         WHERE id = o.id;
    END IF;
    RETURN jsonb_build_object('result', CASE WHEN v_queued IS NULL THEN 'already_forwarded'
                                             ELSE 'forwarded' END,
                              'network', t.network, 'advice', v_kind);
END $$;

-- Network approvals the terminal was not answered 00 for, to be reversed at the network
-- (spec 5.6: a 91 never leaves an effect): the message was decided otherwise (voided after
-- a late answer, or by the stale-claim sweep), or it has no decision long after its
-- deadline (its process died). The terminal's own 0420 would find no 00 original and do
-- nothing, so the switch reverses these itself (one 0420, reason 68, each).
CREATE OR REPLACE FUNCTION auth_network_unanswered_approvals(p_undecided_before timestamptz,
                                                             p_limit integer)
RETURNS SETOF bigint LANGUAGE sql STABLE AS $$
    SELECT t.transaction_id FROM network_transactions t
      LEFT JOIN auth_messages m ON m.message_class = '0200' AND m.terminal_id = t.terminal_id
       AND m.stan = t.stan AND m.transmission_dt = t.transmission_dt
       AND m.acquirer_id = t.acquirer_id
     WHERE t.state IN ('approved', 'stand_in')
       AND ((m.state IS NOT NULL AND m.state NOT IN ('claimed', 'marker')
             AND m.response_code IS DISTINCT FROM '00')
            OR ((m.state IS NULL OR m.state = 'claimed') AND t.created_at < p_undecided_before))
     ORDER BY t.created_at LIMIT p_limit
$$;

-- Spec 5.6: a claim nobody decided (its process died mid-request) is voided once it is
-- older than the stale limit; voiding takes the key lock, so a live attempt's record or void
-- either came first or finds the claim gone. A network approval behind it is then reversed.
CREATE OR REPLACE FUNCTION auth_void_stale_claims(p_before timestamptz, p_limit integer)
RETURNS integer LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    r record;
    v_done integer := 0;
BEGIN
    FOR r IN SELECT id, terminal_id, stan, transmission_dt, acquirer_id FROM auth_messages
              WHERE state = 'claimed' AND created_at < p_before
              ORDER BY terminal_id, stan, transmission_dt, acquirer_id
              LIMIT p_limit LOOP
        PERFORM auth_key_locks(ARRAY[r.terminal_id], ARRAY[r.stan], ARRAY[r.transmission_dt],
                               ARRAY[r.acquirer_id]);
        UPDATE auth_messages SET state = auth_next_state('claimed', 'void'),
                                 response_code = '91', answered_at = now(),
                                 commit_seq = nextval('auth_commit_seq')
         WHERE id = r.id AND state = 'claimed';
        IF FOUND THEN
            v_done := v_done + 1;
        END IF;
    END LOOP;
    RETURN v_done;
END $$;

ALTER FUNCTION auth_network_claim(text[], text[], text[], text[], text[], text[], bigint[],
                                  text[], text[], text[]) SET plan_cache_mode = force_generic_plan;
