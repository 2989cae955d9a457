"""Every SQL read that the operations reports and the database-backed gauges make.

The switch's message records (``auth_messages``, owned by ``switch/authorization``) and the
ledger's tables (``ledger_*``, owned by ``ledger_adapter``) are read here and nowhere else in
``ops``: when the authorization engine changes its schema, this is the one module to change.
Nothing here writes.

Links between the two sides, as the switch records them today:
- an approved 0200's ``effect`` JSON names its ledger hold (``hold_id``), kind and amount;
- a hold's ``reference`` JSON names the terminal and STAN of the 0200 that placed it;
- an advice's ``effect`` is the result of applying it (``kept`` for a partial reversal,
  ``result = original_unknown`` for a reversal of an unknown original), and its stored
  response echoes field 90 (the original's STAN at positions 5-10) and field 37 (RRN).

Queries over a day take a half-open UTC interval ``[start, end)``; callers split a day into
chunks (hours) so a long report can show progress and never holds a day of rows in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from switch.db.runtime import Database

# A report query reads one hour of up to ~50,000 messages; far above the 4 s hot-path bound.
report_query_timeout_s = 120.0

# Processing-code prefixes with a ledger effect (spec 4): withdrawal, deposit, transfer.
FINANCIAL_PREFIXES = ("01", "21", "40")
# The amount a 0200's approval finally moved: a hold's captured amount less what reversals
# gave back; 0 once released; NULL while the hold is still open (the outcome is not known).
_FINAL = """CASE WHEN h.hold_id IS NULL THEN NULL
                 WHEN h.state = 'captured' THEN h.captured_amount - h.reversed_amount
                 WHEN h.state = 'released' THEN 0 END"""
_HOLD_JOIN = """LEFT JOIN ledger_holds h
       ON m.response_code = '00' AND m.effect ? 'hold_id'
      AND h.hold_id = (m.effect->>'hold_id')::bigint"""

_DAILY_REQUESTS = f"""
SELECT m.terminal_id, left(m.processing_code, 2) AS type, m.response_code,
       count(*) AS n, sum(m.amount_minor)::bigint AS requested,
       coalesce(sum({_FINAL}), 0)::bigint AS final,
       count(*) FILTER (WHERE h.state = 'open') AS pending
  FROM auth_messages m {_HOLD_JOIN}
 WHERE m.message_class = '0200' AND m.created_at >= $1 AND m.created_at < $2
   AND m.state NOT IN ('claimed', 'marker')
 GROUP BY 1, 2, 3
"""

# The 0420's reason (field 39) is stored in ``m.reason``; for rows written before that column
# existed a partial reversal (field 95, reason 32 by spec 5.4) is known from what it kept.
_REASON = """coalesce(m.reason, m.effect->>'reason',
                  CASE WHEN coalesce((m.effect->>'kept')::bigint, 0) > 0 THEN '32'
                       ELSE 'unrecorded' END)"""

_DAILY_REVERSALS = f"""
SELECT m.terminal_id, left(m.processing_code, 2) AS type, {_REASON} AS reason, count(*) AS n
  FROM auth_messages m
 WHERE m.message_class = '0420' AND m.created_at >= $1 AND m.created_at < $2
 GROUP BY 1, 2, 3
"""

_SETTLEMENT_DATES = """
SELECT coalesce(m.response_fields->>'15',
                to_char(m.created_at AT TIME ZONE 'UTC', 'MMDD')) AS settlement_date, count(*) AS n
  FROM auth_messages m
 WHERE m.created_at >= $1 AND m.created_at < $2 AND m.response_code IS NOT NULL
   AND m.state NOT IN ('claimed', 'marker')
 GROUP BY 1
"""

_COLUMNS_0200 = f"""m.terminal_id, m.stan, m.processing_code, m.amount_minor, m.response_code,
       coalesce(m.rrn, m.response_fields->>'37') AS rrn, m.effect, h.hold_id, h.state AS hold_state,
       {_FINAL} AS final"""

# Approved 0200s with a ledger effect whose hold cannot be found.
_APPROVED_NOT_POSTED = f"""
SELECT {_COLUMNS_0200}
  FROM auth_messages m {_HOLD_JOIN}
 WHERE m.message_class = '0200' AND m.created_at >= $1 AND m.created_at < $2
   AND m.response_code = '00' AND left(m.processing_code, 2) = ANY($3::text[])
   AND coalesce(m.effect->>'kind', '') <> 'network' AND h.hold_id IS NULL
 ORDER BY m.created_at, m.id
"""

# Financial 0200s of the terminals whose electronic journals are being compared.
_TERMINAL_REQUESTS = f"""
SELECT {_COLUMNS_0200}
  FROM auth_messages m {_HOLD_JOIN}
 WHERE m.message_class = '0200' AND m.created_at >= $1 AND m.created_at < $2
   AND m.state NOT IN ('claimed', 'marker') AND m.terminal_id = ANY($3::text[])
   AND left(m.processing_code, 2) = ANY($4::text[])
 ORDER BY m.created_at, m.id
"""

# Reversals that need a person: unknown original, or a partial dispense.
_REVERSALS = f"""
SELECT m.terminal_id, m.stan, m.amount_minor, coalesce(m.rrn, m.response_fields->>'37') AS rrn,
       coalesce(m.original_stan, substr(m.response_fields->>'90', 5, 6)) AS original_stan, m.effect,
       {_REASON} AS reason
  FROM auth_messages m
 WHERE m.message_class = '0420' AND m.created_at >= $1 AND m.created_at < $2
   AND (m.effect->>'result' = 'original_unknown'
        OR coalesce((m.effect->>'kept')::bigint, 0) > 0)
 ORDER BY m.created_at, m.id
"""

_HOLD_WITH_ORIGIN = """h.hold_id, h.kind, h.direction, h.amount, h.captured_amount,
       h.reversed_amount, h.state, h.reference->>'terminal' AS terminal,
       h.reference->>'stan' AS stan,
       (SELECT coalesce(o.rrn, o.response_fields->>'37') FROM auth_messages o
         WHERE o.message_class = '0200' AND o.terminal_id = h.reference->>'terminal'
           AND o.stan = h.reference->>'stan' AND o.effect->>'hold_id' = h.hold_id::text
         LIMIT 1) AS rrn"""

# Holds the sweeper resolved at expiry (spec 5.2: "listed for reconciliation").
_EXPIRED_HOLDS = f"""
SELECT {_HOLD_WITH_ORIGIN}, h.presumed
  FROM ledger_holds h
 WHERE h.reconciliation AND h.resolved_at >= $1 AND h.resolved_at < $2
   AND (h.presumed OR (h.direction = 'credit' AND h.state = 'released'))
 ORDER BY h.resolved_at, h.hold_id
"""

# Correcting entries that took a customer below zero available.
_CORRECTING_OVERDRAFTS = f"""
SELECT {_HOLD_WITH_ORIGIN}, e.entry_id, -l.amount AS debit, l.account_id
  FROM ledger_entries e
  JOIN ledger_legs l USING (entry_id)
  JOIN ledger_accounts a USING (account_id)
  LEFT JOIN ledger_holds h ON h.hold_id = e.hold_id
 WHERE e.reconciliation AND a.kind = 'customer' AND l.amount < 0
   AND e.posted_at >= $1 AND e.posted_at < $2
 ORDER BY e.posted_at, e.entry_id
"""

# Holds created in the interval that moved money with no approved 0200 naming them.
_POSTED_WITHOUT_APPROVAL = f"""
SELECT {_HOLD_WITH_ORIGIN}
  FROM ledger_holds h
 WHERE h.created_at >= $1 AND h.created_at < $2 AND h.state = 'captured'
   AND NOT EXISTS (
       SELECT 1 FROM auth_messages o
        WHERE o.message_class = '0200' AND o.terminal_id = h.reference->>'terminal'
          AND o.stan = h.reference->>'stan' AND o.response_code = '00'
          AND o.effect->>'hold_id' = h.hold_id::text)
 ORDER BY h.created_at, h.hold_id
"""

_LEDGER_TOTALS = """
SELECT coalesce(sum(-l.amount) FILTER (WHERE l.amount < 0), 0)::bigint AS debits,
       coalesce(sum(l.amount) FILTER (WHERE l.amount > 0), 0)::bigint AS credits
  FROM ledger_entries e
  JOIN ledger_legs l USING (entry_id)
  JOIN ledger_accounts a USING (account_id)
 WHERE a.kind = 'customer' AND e.kind <> 'opening'
   AND e.posted_at >= $1 AND e.posted_at < $2
"""

_HOLDS_OPEN = """
SELECT CASE direction WHEN 'debit' THEN 'withdrawal' ELSE 'deposit' END AS type,
       count(*) AS n, coalesce(sum(amount), 0)::bigint AS amount
  FROM ledger_holds WHERE state = 'open' AND kind = 'hold' GROUP BY 1
"""
# Only rows flagged for reconciliation (a partial index) are counted.
_EXPIRY_COUNTS = """
SELECT count(*) FILTER (WHERE presumed) AS presumed,
       count(*) FILTER (WHERE direction = 'credit' AND state = 'released') AS deposits
  FROM ledger_holds WHERE reconciliation
"""
_SAF_DEPTH = """
SELECT network, count(*) AS n FROM network_advices WHERE state = 'queued' GROUP BY network
"""


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """A UTC day as a half-open interval."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def hourly_chunks(day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
    start, _ = day_bounds(day)
    return [(start + dt.timedelta(hours=h), start + dt.timedelta(hours=h + 1)) for h in range(24)]


def _rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in rows]


async def daily_requests(db: Database, start: dt.datetime, end: dt.datetime
                         ) -> list[dict[str, Any]]:
    """0200s grouped by terminal, type (field 3 positions 1-2) and response code."""
    return _rows(await db.fetch(_DAILY_REQUESTS, start, end,
                                timeout_s=report_query_timeout_s))


async def daily_reversals(db: Database, start: dt.datetime, end: dt.datetime
                          ) -> list[dict[str, Any]]:
    return _rows(await db.fetch(_DAILY_REVERSALS, start, end,
                                timeout_s=report_query_timeout_s))


async def settlement_dates(db: Database, start: dt.datetime, end: dt.datetime
                           ) -> list[dict[str, Any]]:
    return _rows(await db.fetch(_SETTLEMENT_DATES, start, end,
                                timeout_s=report_query_timeout_s))


async def approved_not_posted(db: Database, start: dt.datetime, end: dt.datetime
                              ) -> list[dict[str, Any]]:
    return _rows(await db.fetch(_APPROVED_NOT_POSTED, start, end, list(FINANCIAL_PREFIXES),
                                timeout_s=report_query_timeout_s))


async def terminal_requests(db: Database, start: dt.datetime, end: dt.datetime,
                            terminals: Sequence[str]) -> list[dict[str, Any]]:
    return _rows(await db.fetch(_TERMINAL_REQUESTS, start, end, list(terminals),
                                list(FINANCIAL_PREFIXES),
                                timeout_s=report_query_timeout_s))


async def reversals_needing_review(db: Database, start: dt.datetime, end: dt.datetime
                                   ) -> list[dict[str, Any]]:
    return _rows(await db.fetch(_REVERSALS, start, end,
                                timeout_s=report_query_timeout_s))


async def expired_holds(db: Database, start: dt.datetime, end: dt.datetime
                        ) -> list[dict[str, Any]]:
    return _rows(await db.fetch(_EXPIRED_HOLDS, start, end,
                                timeout_s=report_query_timeout_s))


async def correcting_overdrafts(db: Database, start: dt.datetime, end: dt.datetime
                                ) -> list[dict[str, Any]]:
    return _rows(await db.fetch(_CORRECTING_OVERDRAFTS, start, end,
                                timeout_s=report_query_timeout_s))


async def posted_without_approval(db: Database, start: dt.datetime, end: dt.datetime
                                  ) -> list[dict[str, Any]]:
    return _rows(await db.fetch(_POSTED_WITHOUT_APPROVAL, start, end,
                                timeout_s=report_query_timeout_s))


async def ledger_totals(db: Database, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    row = await db.fetchrow(_LEDGER_TOTALS, start, end, timeout_s=report_query_timeout_s)
    return {"debits": int(row["debits"]), "credits": int(row["credits"])}


@dataclass(frozen=True, slots=True)
class OperationalFigures:
    """What the database-backed gauges show (``ops.metrics_snapshot``)."""

    holds_open: dict[str, tuple[int, int]]  # type -> (count, amount in minor units)
    presumed_dispensed: int
    deposits_expired: int
    saf_queue_depth: dict[str, int]


async def operational_figures(db: Database) -> OperationalFigures:
    holds = await db.fetch(_HOLDS_OPEN)
    expiry = await db.fetchrow(_EXPIRY_COUNTS)
    saf = await db.fetch(_SAF_DEPTH)
    return OperationalFigures(
        holds_open={row["type"]: (int(row["n"]), int(row["amount"])) for row in holds},
        presumed_dispensed=int(expiry["presumed"]),
        deposits_expired=int(expiry["deposits"]),
        saf_queue_depth={row["network"]: int(row["n"]) for row in saf},
    )
