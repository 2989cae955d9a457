"""A synthetic day of switch traffic in PostgreSQL, to measure the reports on a realistic size.

``python -m ops.reports.synthetic --messages 1000000`` starts an embedded PostgreSQL in a
temporary directory (or uses ``--dsn``), applies the migrations, writes one UTC day of
``auth_messages`` with the matching ledger holds, entries and legs (set-based SQL, so a
million rows take seconds to generate), then times ``reports daily`` and ``reports reconcile``
over it and prints the figures (docs/operations.md quotes them). The shape of the day:

- 5/9 of the messages are 0200 withdrawals of 100.00 spread evenly over the day at 2,000
  terminals; every 5th is declined 51, the others approved with a hold;
- 2% are 0420 reversals, every 10th of them partial (50.00 kept, reason 32);
- one approval in a thousand gets no advice and is captured by expiry (presumed dispensed);
- every other approval gets a 0220 completion (its hold captured: an entry with two legs).
So a day of ``n`` holds ``n`` messages less the presumed ones (0.04%).

``expected(n)`` gives what the reports must find for ``n`` messages; a test checks it on a small
day so the figures measured on a large one come from reports that are right.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import trio

from switch.db.runtime import Database, open_database

AMOUNT = 10_000
TERMINALS = 2_000

def expected(n: int) -> dict[str, int]:
    """What a synthetic day of ``n`` messages holds (see the module docstring)."""
    requests = n * 5 // 9
    approved = requests - requests // 5
    presumed = requests // 1000
    reversals = n // 50
    completions = approved - reversals - presumed
    return {"requests": requests, "approved": approved, "completions": completions,
            "reversals": reversals, "partial": reversals // 10, "presumed": presumed,
            "messages": requests + completions + reversals}


async def generate(db: Database, day: dt.date, n: int) -> dict[str, int]:
    """Write the synthetic day; returns ``expected(n)``. Approved 0200 number k (1-based,
    in time order) is completed when k <= completions, reversed when the next ``reversals``,
    and presumed dispensed otherwise."""
    shape = expected(n)
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    step = dt.timedelta(days=1) / max(1, shape["requests"])
    await db.execute(
        "SELECT ledger_open_account('SYN-A', 'synthetic', '156', $1, 'active', 'customer')",
        AMOUNT * n, timeout_s=600)
    await db.execute(_REQUESTS, start, step, shape["requests"], TERMINALS, AMOUNT,
                     timeout_s=600)
    await db.execute(_HOLDS, shape["completions"], shape["reversals"], AMOUNT, timeout_s=600)
    await db.execute(_ADVICES, shape["completions"], shape["reversals"], AMOUNT,
                     timeout_s=600)
    await db.execute(_POSTINGS, timeout_s=600)
    await db.execute("ANALYZE", timeout_s=600)
    return shape


# 0200s: every 5th declined 51; approved ones numbered k in time order (for the advices).
_REQUESTS = """
INSERT INTO auth_messages (message_class, terminal_id, stan, transmission_dt, acquirer_id,
    fingerprint, state, processing_code, amount_minor, card_id, response_code, response_fields,
    effect, created_at, answered_at)
SELECT '0200', 'T' || lpad((i % $4::bigint)::text, 5, '0'),
       lpad((i / $4::bigint)::text, 6, '0'),
       to_char($1::timestamptz + (i - 1) * $2::interval, 'MMDDHH24MISS'), '123456', 'syn',
       CASE WHEN i % 5 = 0 THEN 'declined' ELSE 'approved' END, '010000', $5::bigint, 1,
       CASE WHEN i % 5 = 0 THEN '51' ELSE '00' END,
       jsonb_build_object('15', to_char($1::timestamptz, 'MMDD'), '37', lpad(i::text, 12, '0')),
       CASE WHEN i % 5 = 0 THEN NULL
            ELSE jsonb_build_object('kind', 'withdrawal', 'hold_id', i,
                                    'amount', $5::bigint) END,
       $1::timestamptz + (i - 1) * $2::interval, $1::timestamptz + (i - 1) * $2::interval
  FROM generate_series(1, $3::bigint) AS i
"""

# One hold per approved 0200 (hold_id = i); its fate by its rank k among approved ones.
_HOLDS = """
INSERT INTO ledger_holds (hold_id, kind, account_id, counterparty_id, direction, amount, state,
    captured_amount, expires_at, expiry_action, presumed, reconciliation, reference,
    created_at, resolved_at)
SELECT i, 'hold', 'SYN-A', 'atm-cash:156', 'debit', p.amount,
       CASE WHEN fate = 'released' THEN 'released' ELSE 'captured' END,
       CASE fate WHEN 'released' THEN 0 WHEN 'partial' THEN p.amount / 2 ELSE p.amount END,
       created_at + interval '10 minutes', 'capture', fate = 'presumed', fate = 'presumed',
       jsonb_build_object('terminal', terminal_id, 'stan', stan),
       created_at, created_at + interval '1 second'
  FROM (SELECT $3::bigint AS amount) AS p,
       (SELECT *, CASE WHEN k <= $1::bigint THEN 'completed'
                       WHEN k <= $1::bigint + $2::bigint
                            THEN CASE WHEN (k - $1::bigint) % 10 = 0 THEN 'partial'
                                      ELSE 'released' END
                       ELSE 'presumed' END AS fate
          FROM (SELECT (effect->>'hold_id')::bigint AS i, terminal_id, stan, created_at,
                       row_number() OVER (ORDER BY created_at, id) AS k
                  FROM auth_messages WHERE message_class = '0200' AND response_code = '00'
                   AND fingerprint = 'syn') AS approved) AS fated
"""

# The advices: a 0220 for each of the first completions, a 0420 for the next reversals.
_ADVICES = """
INSERT INTO auth_messages (message_class, terminal_id, stan, transmission_dt, acquirer_id,
    fingerprint, state, processing_code, amount_minor, response_code, response_fields, effect,
    created_at, answered_at)
SELECT CASE WHEN k <= p.completions THEN '0220' ELSE '0420' END, terminal_id, stan,
       transmission_dt, '123456', 'syn', 'recorded', '010000', p.amount, '00',
       jsonb_build_object('15', response_fields->>'15', '37', response_fields->>'37',
                          '90', '0200' || stan || transmission_dt || '00000123456'
                                || '00000000000'),
       CASE WHEN k <= p.completions
            THEN jsonb_build_object('result', 'captured', 'captured', p.amount)
            WHEN (k - p.completions) % 10 = 0
            THEN jsonb_build_object('result', 'captured', 'kept', p.amount / 2)
            ELSE jsonb_build_object('result', 'released', 'kept', 0) END,
       created_at + interval '1 second', created_at + interval '1 second'
  FROM (SELECT $1::bigint AS completions, $2::bigint AS reversals, $3::bigint AS amount) AS p,
       (SELECT terminal_id, stan, transmission_dt, response_fields, created_at,
               row_number() OVER (ORDER BY created_at, id) AS k
          FROM auth_messages WHERE message_class = '0200' AND response_code = '00'
           AND fingerprint = 'syn') AS approved
 WHERE k <= p.completions + p.reversals
"""

# Entries and legs of every captured hold (capture, or expiry when presumed).
_POSTINGS = """
WITH captured AS (
  SELECT hold_id, captured_amount, presumed, resolved_at FROM ledger_holds
   WHERE account_id = 'SYN-A' AND state = 'captured'
), entries AS (
  INSERT INTO ledger_entries (kind, hold_id, posted_at)
  SELECT CASE WHEN presumed THEN 'expiry' ELSE 'capture' END, hold_id, resolved_at
    FROM captured RETURNING entry_id, hold_id, posted_at
)
INSERT INTO ledger_legs (entry_id, account_id, amount, description, posted_at)
SELECT e.entry_id, leg.account_id, leg.sign * c.captured_amount, 'ATM WITHDRAWAL', e.posted_at
  FROM entries e JOIN captured c USING (hold_id),
       (VALUES ('SYN-A', -1), ('atm-cash:156', 1)) AS leg (account_id, sign)
"""


async def measure(db: Database, day: dt.date) -> dict[str, Any]:
    from ops.reports.daily import daily_report
    from ops.reports.reconcile import reconcile

    started = time.perf_counter()
    daily = await daily_report(db, day)
    daily_s = time.perf_counter() - started
    started = time.perf_counter()
    recon = await reconcile(db, day)
    reconcile_s = time.perf_counter() - started
    return {"daily_s": round(daily_s, 2), "reconcile_s": round(reconcile_s, 2),
            "daily_totals": daily["totals"], "anomalies": recon["totals"]["anomalies"]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.reports.synthetic")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--date", default="2026-11-28")
    parser.add_argument("--dsn", default=None, help="an empty, migrated database (default: "
                        "an embedded PostgreSQL in a temporary directory)")
    args = parser.parse_args(argv)
    day = dt.date.fromisoformat(args.date)

    async def run(dsn: str) -> None:
        from switch.db.migrate import migrate

        async with open_database(dsn, pool_size_min=1, pool_size_max=2) as db:
            await migrate(db)
            began = time.perf_counter()
            await generate(db, day, args.messages)
            print(f"generated {args.messages} messages in {time.perf_counter() - began:.1f}s",
                  file=sys.stderr)
            print(await measure(db, day))

    if args.dsn:
        trio.run(run, args.dsn)
        return 0
    import pgserver

    with tempfile.TemporaryDirectory(prefix="atm-switch-synthetic-") as root:
        server = pgserver.get_server(root, cleanup_mode="delete")
        try:
            trio.run(run, str(server.get_uri()))
        finally:
            server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
