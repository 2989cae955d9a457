"""End-of-day reconciliation: what the ledger moved on a UTC day and what needs a person.

Read-only queries over the ledger's tables (``ledger_adapter`` owns them; nothing here
writes). The report lists, for one day:

- ``totals``: per journal entry kind (capture, expiry, transfer, reversal, opening), the
  number of entries and the debits and credits they posted to customer accounts;
- ``presumed_dispensed``: withdrawal holds the sweeper captured because neither a completion
  nor a reversal came (spec 5.2: "such holds are listed for reconciliation");
- ``expired_deposits``: deposit holds released by expiry (spec 5.2, likewise listed);
- ``overdrawn_by_correction``: correcting entries (reversals of posted credits) that took an
  account's available balance below zero;
- ``overdue_open_holds``: holds past their expiry that the sweeper has not resolved yet;
- ``invariant_violations``: the ledger's own invariant check (empty when money balances).

Amounts are integer minor units; PANs never appear (the ledger does not hold them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from switch.db.runtime import Database

_TOTALS = """
SELECT e.kind,
       count(DISTINCT e.entry_id) AS entries,
       coalesce(sum(-l.amount) FILTER (WHERE l.amount < 0), 0)::bigint AS customer_debits,
       coalesce(sum(l.amount) FILTER (WHERE l.amount > 0), 0)::bigint AS customer_credits
  FROM ledger_entries e
  JOIN ledger_legs l USING (entry_id)
  JOIN ledger_accounts a USING (account_id)
 WHERE a.kind = 'customer' AND e.posted_at >= $1 AND e.posted_at < $2
 GROUP BY e.kind ORDER BY e.kind
"""

_HOLD_COLUMNS = """hold_id, account_id, direction, amount, captured_amount, state, presumed,
       expires_at, resolved_at, description"""

# Withdrawals the sweeper captured as "presumed dispensed".
_PRESUMED = f"""
SELECT {_HOLD_COLUMNS} FROM ledger_holds
 WHERE resolved_at >= $1 AND resolved_at < $2 AND presumed
 ORDER BY resolved_at, hold_id
"""

# Deposits the sweeper released at expiry (only the sweeper flags a release).
_EXPIRED_DEPOSITS = f"""
SELECT {_HOLD_COLUMNS} FROM ledger_holds
 WHERE resolved_at >= $1 AND resolved_at < $2 AND direction = 'credit'
   AND state = 'released' AND reconciliation
 ORDER BY resolved_at, hold_id
"""

_OVERDRAWN = """
SELECT e.entry_id, e.hold_id, e.posted_at, l.account_id, -l.amount AS amount
  FROM ledger_entries e
  JOIN ledger_legs l USING (entry_id)
  JOIN ledger_accounts a USING (account_id)
 WHERE e.reconciliation AND a.kind = 'customer' AND l.amount < 0
   AND e.posted_at >= $1 AND e.posted_at < $2
 ORDER BY e.posted_at, e.entry_id
"""

_OVERDUE = """
SELECT count(*) AS holds, coalesce(sum(amount), 0)::bigint AS amount
  FROM ledger_holds WHERE state = 'open' AND expires_at < $1
"""


async def reconciliation_report(
    db: Database, day: dt.date, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The reconciliation report for UTC ``day`` (see the module docstring)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    now = now or dt.datetime.now(dt.UTC)
    totals = await db.fetch(_TOTALS, start, end)
    presumed = await db.fetch(_PRESUMED, start, end)
    deposits = await db.fetch(_EXPIRED_DEPOSITS, start, end)
    overdrawn = await db.fetch(_OVERDRAWN, start, end)
    overdue = await db.fetchrow(_OVERDUE, now)
    violations = await db.fetch("SELECT * FROM ledger_check_invariants()")
    return {
        "day": day.isoformat(),
        "totals": [dict(row) for row in totals],
        "presumed_dispensed": [_hold(row) for row in presumed],
        "expired_deposits": [_hold(row) for row in deposits],
        "overdrawn_by_correction": [
            dict(row) | {"posted_at": row["posted_at"].isoformat()} for row in overdrawn
        ],
        "overdue_open_holds": {"holds": int(overdue["holds"]), "amount": int(overdue["amount"])},
        "invariant_violations": [str(row[0]) for row in violations],
    }


def _hold(row: Any) -> dict[str, Any]:
    record = dict(row)
    for name in ("expires_at", "resolved_at"):
        if record[name] is not None:
            record[name] = record[name].isoformat()
    return record


def render_text(report: dict[str, Any]) -> str:
    """A plain-text rendering for operators (amounts as minor units, like the JSON)."""
    lines = [f"reconciliation for {report['day']} (UTC)"]
    for row in report["totals"]:
        lines.append(
            f"  {row['kind']:<10} entries {row['entries']:>6}  debits {row['customer_debits']:>14}"
            f"  credits {row['customer_credits']:>14}"
        )
    sections = (
        ("presumed dispensed (withdrawal holds captured at expiry)", "presumed_dispensed"),
        ("expired deposits (released at expiry)", "expired_deposits"),
        ("accounts overdrawn by a correcting entry", "overdrawn_by_correction"),
    )
    for title, key in sections:
        items = report[key]
        lines.append(f"{title}: {len(items)}")
        for item in items:
            lines.append(
                f"    hold {item.get('hold_id')} account {item['account_id']}"
                f" amount {item['amount']}"
            )
    overdue = report["overdue_open_holds"]
    lines.append(f"open holds past expiry: {overdue['holds']} ({overdue['amount']})")
    violations = report["invariant_violations"]
    lines.append("ledger invariants: " + ("hold" if not violations else "; ".join(violations)))
    return "\n".join(lines)
