-- Prototype of issue 21's minimal write set, for loadtest/write_set_prototype.py only (never
-- migrated into the switch's database). One row per message is at once its claim, idempotency
-- record, stored decision and ledger transfer: a 0200's row is the pending transfer (debit the
-- card's account, credit ATM cash), its 0220 posts it by a compare-and-set from 'approved'.
-- Account balances and daily counters are updated set-based, one statement per step per batch.
-- What it leaves out (PIN tries, chip, network routing, reversals, expiry) is listed in
-- docs/performance.md, "Fewer statements, the floor, and a prototype of the minimal write set".

CREATE TABLE p_accounts (account_id text PRIMARY KEY, balance bigint NOT NULL, held bigint NOT NULL DEFAULT 0,
  status text NOT NULL DEFAULT 'active', CHECK (held >= 0));
CREATE TABLE p_cards (card_id bigint PRIMARY KEY, account_id text NOT NULL, status text NOT NULL DEFAULT 'active',
  version integer NOT NULL DEFAULT 1, pin_tries integer NOT NULL DEFAULT 0, daily_max bigint NOT NULL);
CREATE TABLE p_counters (card_id bigint, day date, amount bigint NOT NULL, count integer NOT NULL,
  PRIMARY KEY (card_id, day));
CREATE TABLE p_messages (
  message_class text, terminal_id text, stan text, transmission_dt text, acquirer_id text,
  fingerprint text NOT NULL, state text NOT NULL, response_code text NOT NULL,
  card_id bigint, debit_account text, credit_account text, amount bigint NOT NULL,
  posted bigint NOT NULL DEFAULT 0, day date, expires_at timestamptz, original_stan text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (message_class, terminal_id, stan, transmission_dt, acquirer_id))
  WITH (fillfactor = 80);
CREATE INDEX p_messages_pending ON p_messages (expires_at) WHERE state = 'approved';

CREATE FUNCTION p_financial(p_terms text[], p_stans text[], p_tdts text[], p_acqs text[], p_fps text[],
  p_cards bigint[], p_versions integer[], p_amounts bigint[], p_days date[], p_expires timestamptz[])
RETURNS TABLE (idx integer, code text) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
DECLARE n integer := cardinality(p_terms); v_code text[] := array_fill(NULL::text, ARRAY[n]);
  v_new boolean[] := array_fill(true, ARRAY[n]); v_acct text[] := array_fill(NULL::text, ARRAY[n]);
  v_atids tid[] := '{}'; v_adelta bigint[] := '{}'; v_last text; r record; v_avail jsonb := '{}'; v_day jsonb := '{}'; a bigint; d bigint; v_rows integer; v_want integer := 0;
BEGIN
  -- repeats
  FOR r IN SELECT t.i::integer AS i, m.response_code, m.fingerprint FROM unnest(p_terms, p_stans, p_tdts, p_acqs)
      WITH ORDINALITY AS t (term, stan, tdt, acq, i)
      CROSS JOIN LATERAL (SELECT k.response_code, k.fingerprint FROM p_messages k WHERE k.message_class = '0200'
        AND k.terminal_id = t.term AND k.stan = t.stan AND k.transmission_dt = t.tdt AND k.acquirer_id = t.acq LIMIT 1) m
  LOOP v_new[r.i] := false; v_code[r.i] := CASE WHEN r.fingerprint = p_fps[r.i] THEN r.response_code ELSE '94' END; END LOOP;
  -- cards, accounts and counters, locked in one statement, in account order
  FOR r IN SELECT t.i::integer AS i, a.ctid AS atid, c.status AS cs, c.version, c.daily_max, a.account_id, a.balance - a.held AS avail,
                  a.status AS ast, coalesce(k.amount, 0) AS today
      FROM unnest(p_cards) WITH ORDINALITY AS t (card, i)
      JOIN p_cards c ON c.card_id = t.card JOIN p_accounts a ON a.account_id = c.account_id
      LEFT JOIN p_counters k ON k.card_id = c.card_id AND k.day = p_days[t.i]
     WHERE v_new[t.i] ORDER BY a.account_id, t.i FOR UPDATE OF c, a
  LOOP
    v_acct[r.i] := r.account_id;
    a := coalesce((v_avail->>r.account_id)::bigint, r.avail);
    d := coalesce((v_day->>p_cards[r.i]::text)::bigint, r.today);
    IF r.version <> p_versions[r.i] THEN v_code[r.i] := '96';
    ELSIF r.cs <> 'active' THEN v_code[r.i] := '62';
    ELSIF r.ast <> 'active' THEN v_code[r.i] := '62';
    ELSIF d + p_amounts[r.i] > r.daily_max THEN v_code[r.i] := '61';
    ELSIF a < p_amounts[r.i] THEN v_code[r.i] := '51';
    ELSE v_code[r.i] := '00';
      v_avail := v_avail || jsonb_build_object(r.account_id, a - p_amounts[r.i]);
      v_day := v_day || jsonb_build_object(p_cards[r.i]::text, d + p_amounts[r.i]);
      IF v_last IS DISTINCT FROM r.account_id THEN v_atids := v_atids || r.atid; v_adelta := v_adelta || 0::bigint; v_last := r.account_id; END IF;
      v_adelta[cardinality(v_adelta)] := v_adelta[cardinality(v_adelta)] + p_amounts[r.i];
    END IF;
  END LOOP;
  UPDATE p_accounts a SET held = a.held + v_adelta[array_position(v_atids, a.ctid)] WHERE a.ctid = ANY (v_atids);
  INSERT INTO p_counters AS k (card_id, day, amount, count)
  SELECT u.card, u.day, sum(u.amt), count(*) FROM unnest(p_cards, p_days, p_amounts, v_code) AS u (card, day, amt, code)
   WHERE u.code = '00' GROUP BY u.card, u.day ORDER BY u.card, u.day
  ON CONFLICT (card_id, day) DO UPDATE SET amount = k.amount + excluded.amount, count = k.count + excluded.count;
  SELECT count(*) INTO v_want FROM unnest(v_new) AS u (x) WHERE u.x;
  INSERT INTO p_messages (message_class, terminal_id, stan, transmission_dt, acquirer_id, fingerprint, state,
      response_code, card_id, debit_account, credit_account, amount, day, expires_at)
  SELECT '0200', p_terms[u.i], p_stans[u.i], p_tdts[u.i], p_acqs[u.i], p_fps[u.i],
         CASE WHEN v_code[u.i] = '00' THEN 'approved' ELSE 'declined' END, v_code[u.i], p_cards[u.i],
         v_acct[u.i], 'ATM-CASH', p_amounts[u.i], p_days[u.i], p_expires[u.i]
    FROM generate_subscripts(p_terms, 1) AS u (i) WHERE v_new[u.i] ORDER BY u.i
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  IF v_rows <> v_want THEN RAISE EXCEPTION 'concurrent claim' USING ERRCODE = '40001'; END IF;
  RETURN QUERY SELECT u.i::integer, u.c FROM unnest(v_code) WITH ORDINALITY AS u (c, i);
END $$;

CREATE FUNCTION p_advice(p_terms text[], p_stans text[], p_tdts text[], p_acqs text[], p_fps text[],
  p_ostans text[], p_otdts text[], p_amounts bigint[])
RETURNS TABLE (idx integer, code text) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
DECLARE n integer := cardinality(p_terms); v_new boolean[] := array_fill(true, ARRAY[n]);
  v_code text[] := array_fill('00'::text, ARRAY[n]); v_post bigint[] := array_fill(NULL::bigint, ARRAY[n]);
  v_ostan text[] := array_fill(NULL::text, ARRAY[n]); v_acct text[] := array_fill(NULL::text, ARRAY[n]);
  v_hold bigint[] := array_fill(NULL::bigint, ARRAY[n]); v_tids tid[] := '{}'; v_tpost bigint[] := '{}'; r record; v_rows integer; v_want integer := 0;
BEGIN
  -- repeats of the advice and the originals, locked, one statement
  FOR r IN SELECT t.i::integer AS i, rep.fingerprint AS rfp, o.state, o.amount, o.debit_account, o.stan AS ostan, o.ctid AS otid
      FROM unnest(p_terms, p_stans, p_tdts, p_acqs, p_ostans, p_otdts) WITH ORDINALITY AS t (term, stan, tdt, acq, ostan, otdt, i)
      LEFT JOIN LATERAL (SELECT k.fingerprint FROM p_messages k WHERE k.message_class = '0220' AND k.terminal_id = t.term
          AND k.stan = t.stan AND k.transmission_dt = t.tdt AND k.acquirer_id = t.acq LIMIT 1) rep ON true
      LEFT JOIN LATERAL (SELECT k.ctid, k.state, k.amount, k.debit_account, k.stan FROM p_messages k WHERE k.message_class = '0200'
          AND k.terminal_id = t.term AND k.stan = t.ostan AND k.transmission_dt = t.otdt AND k.acquirer_id = t.acq
          LIMIT 1 FOR UPDATE) o ON true
     ORDER BY t.term, t.ostan, t.otdt
  LOOP
    IF r.rfp IS NOT NULL THEN v_new[r.i] := false; CONTINUE; END IF;
    IF r.state = 'approved' THEN
      v_post[r.i] := least(p_amounts[r.i], r.amount); v_hold[r.i] := r.amount; v_acct[r.i] := r.debit_account;
      v_ostan[r.i] := r.ostan; v_tids := v_tids || r.otid; v_tpost := v_tpost || v_post[r.i];
    END IF;
  END LOOP;
  -- the pending transfers posted (compare-and-set from approved)
  UPDATE p_messages m SET state = 'completed', posted = v_tpost[array_position(v_tids, m.ctid)]
   WHERE m.ctid = ANY (v_tids) AND m.state = 'approved';
  UPDATE p_accounts a SET balance = a.balance - x.post, held = a.held - x.hold
    FROM (SELECT u.acct, sum(u.post) AS post, sum(u.hold) AS hold FROM unnest(v_acct, v_post, v_hold) AS u (acct, post, hold)
           WHERE u.post IS NOT NULL GROUP BY u.acct) x WHERE a.account_id = x.acct;
  SELECT count(*) INTO v_want FROM unnest(v_new) AS u (x) WHERE u.x;
  INSERT INTO p_messages (message_class, terminal_id, stan, transmission_dt, acquirer_id, fingerprint, state,
      response_code, amount, original_stan)
  SELECT '0220', p_terms[u.i], p_stans[u.i], p_tdts[u.i], p_acqs[u.i], p_fps[u.i], 'recorded', '00', p_amounts[u.i],
         p_ostans[u.i] FROM generate_subscripts(p_terms, 1) AS u (i) WHERE v_new[u.i] ORDER BY u.i
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  IF v_rows <> v_want THEN RAISE EXCEPTION 'concurrent advice' USING ERRCODE = '40001'; END IF;
  RETURN QUERY SELECT u.i::integer, u.c FROM unnest(v_code) WITH ORDINALITY AS u (c, i);
END $$;
