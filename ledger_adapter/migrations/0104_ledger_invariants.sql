-- Money invariants as one query (owner: ledger_adapter); the in-memory twin is
-- ledger_adapter/invariants.py. Returns one line per problem; none means all hold.
CREATE OR REPLACE FUNCTION ledger_check_invariants() RETURNS SETOF text LANGUAGE sql STABLE AS $$
    SELECT 'entry ' || entry_id || ' does not balance'
      FROM ledger_legs GROUP BY entry_id HAVING sum(amount) <> 0 OR count(*) < 2
    UNION ALL
    SELECT 'currency ' || a.currency || ' legs do not sum to zero'
      FROM ledger_legs l JOIN ledger_accounts a USING (account_id)
     GROUP BY a.currency HAVING sum(l.amount) <> 0
    UNION ALL
    SELECT 'account ' || a.account_id || ' balance differs from its legs'
      FROM ledger_accounts a
      LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_legs GROUP BY account_id) l
           USING (account_id)
     WHERE a.kind = 'customer' AND a.balance <> coalesce(l.total, 0)
    UNION ALL
    SELECT 'account ' || a.account_id || ' held or pending differs from its open holds'
      FROM ledger_accounts a
      LEFT JOIN (SELECT account_id,
                        sum(amount) FILTER (WHERE direction = 'debit') AS debits,
                        sum(amount) FILTER (WHERE direction = 'credit') AS credits
                   FROM ledger_holds WHERE state = 'open' GROUP BY account_id) h USING (account_id)
     WHERE a.held <> coalesce(h.debits, 0) OR a.pending_credit <> coalesce(h.credits, 0)
    UNION ALL
    SELECT 'hold ' || hold_id || ' counts the wrong amount'
      FROM ledger_holds
     WHERE counted AND counted_amount <> CASE state WHEN 'open' THEN amount
                                                  ELSE captured_amount - reversed_amount END
    UNION ALL
    SELECT 'counter ' || counter_id || '@' || day || ' differs from its holds'
      FROM ledger_daily_counters c
      FULL JOIN (SELECT counter_id, counter_day AS day, sum(counted_amount) AS amount,
                        count(*) AS count
                   FROM ledger_holds WHERE counted GROUP BY 1, 2) h USING (counter_id, day)
     WHERE coalesce(c.amount, 0) <> coalesce(h.amount, 0) OR coalesce(c.count, 0) <> coalesce(h.count, 0)
    UNION ALL
    SELECT 'account ' || a.account_id || ' overdrawn without a reconciliation flag'
      FROM ledger_accounts a
     WHERE a.kind = 'customer' AND a.balance - a.held < 0
       AND NOT EXISTS (SELECT 1 FROM ledger_legs l JOIN ledger_entries e USING (entry_id)
                        WHERE l.account_id = a.account_id AND l.amount < 0 AND e.reconciliation)
$$;
