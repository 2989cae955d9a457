-- The batch functions look every row up by key (ids, idempotency keys, counters), driven by
-- the arrays they are given. PL/pgSQL caches each statement's plan for the session, often
-- planned while the tables were small; a cached hash join over a sequential scan of
-- ledger_idempotency or ledger_holds then reads the whole, growing table on every call
-- (measured: most of PostgreSQL's CPU under load after a few minutes). Index lookups are
-- always right here, so the functions run with sequential scans priced out.
ALTER FUNCTION ledger_hold_batch(text[], text[], text[], text[], bigint[], text[], timestamptz[],
                                 text[], text[], date[], bigint[], bigint[], text[], text[])
    SET enable_seqscan = off;
ALTER FUNCTION ledger_settle_batch(text[], text[], text[], bigint[], bigint[])
    SET enable_seqscan = off;
ALTER FUNCTION ledger_transfer_batch(text[], text[], text[], text[], bigint[], text[], date[],
                                     bigint[], bigint[], text[], text[])
    SET enable_seqscan = off;
ALTER FUNCTION ledger_release_by_key(text) SET enable_seqscan = off;
