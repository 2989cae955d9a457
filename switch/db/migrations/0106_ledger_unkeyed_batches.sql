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
