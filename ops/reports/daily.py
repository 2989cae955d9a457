"""``atm-switch reports daily``: one UTC day's traffic per terminal and transaction type.

For each (terminal, type): 0200 count, approved count, amounts requested and approved, the
amount the approvals finally moved (``settled_amount``: cash dispensed after completions and
partial reversals for withdrawals, the credit for deposits, the transfer for transfers, less
any reversal), how many approvals are still pending (hold open), the response-code mix and the
reversals by reason; totals; volume per hour; and the settlement dates (field 15) the day's
responses carried, which must all be the day itself (the switch's day boundary is UTC midnight).

Amounts are integer minor units. The day is read hour by hour (``sources``), so memory stays
flat and a progress bar can move; a day of 1,000,000 messages takes seconds
(docs/operations.md has the measured figure).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ops.reports import sources
from ops.reports.progress import Progress, silent
from switch.db.runtime import Database

# Positions 1-2 of field 3 (spec 4).
TRANSACTION_TYPES = {
    "01": "withdrawal",
    "21": "deposit",
    "31": "balance_inquiry",
    "38": "mini_statement",
    "39": "name_inquiry",
    "40": "transfer",
    "90": "pin_change",
}
CSV_COLUMNS = ("terminal", "type", "count", "approved", "requested_amount", "approved_amount",
               "settled_amount", "pending", "response_codes", "reversals")


def type_name(prefix: str) -> str:
    return TRANSACTION_TYPES.get(prefix, f"other_{prefix}")


def _empty_line() -> dict[str, Any]:
    return {"count": 0, "approved": 0, "requested_amount": 0, "approved_amount": 0,
            "settled_amount": 0, "pending": 0, "response_codes": Counter(),
            "reversals": Counter()}


def _add(line: dict[str, Any], row: dict[str, Any]) -> None:
    n, code = int(row["n"]), row["response_code"] or "none"
    line["count"] += n
    line["requested_amount"] += int(row["requested"])
    line["response_codes"][code] += n
    if code == "00":
        line["approved"] += n
        line["approved_amount"] += int(row["requested"])
        line["settled_amount"] += int(row["final"])
        line["pending"] += int(row["pending"])


async def daily_report(db: Database, day: dt.date, progress: Progress | None = None
                       ) -> dict[str, Any]:
    progress = progress or silent()
    lines: dict[tuple[str, str], dict[str, Any]] = defaultdict(_empty_line)
    hourly = [0] * 24
    settlement: Counter[str] = Counter()
    for hour, (start, end) in enumerate(sources.hourly_chunks(day)):
        for row in await sources.daily_requests(db, start, end):
            _add(lines[(row["terminal_id"], type_name(row["type"]))], row)
            hourly[hour] += int(row["n"])
        for row in await sources.daily_reversals(db, start, end):
            lines[(row["terminal_id"], type_name(row["type"]))]["reversals"][row["reason"]] += (
                int(row["n"]))
        for row in await sources.settlement_dates(db, start, end):
            settlement[row["settlement_date"] or "none"] += int(row["n"])
        progress.advance()
    return _assemble(day, lines, hourly, settlement)


def _assemble(day: dt.date, lines: dict[tuple[str, str], dict[str, Any]], hourly: list[int],
              settlement: Counter[str]) -> dict[str, Any]:
    rows = [{"terminal": terminal, "type": kind, **_plain(line)}
            for (terminal, kind), line in sorted(lines.items())]
    by_type: dict[str, dict[str, Any]] = defaultdict(_empty_line)
    total = _empty_line()
    for (_, kind), line in lines.items():
        for target in (by_type[kind], total):
            for key in ("count", "approved", "requested_amount", "approved_amount",
                        "settled_amount", "pending"):
                target[key] += line[key]
            target["response_codes"].update(line["response_codes"])
            target["reversals"].update(line["reversals"])
    expected = day.strftime("%m%d")
    return {
        "date": day.isoformat(),
        "rows": rows,
        "by_type": {kind: _plain(line) for kind, line in sorted(by_type.items())},
        "totals": _plain(total),
        "hourly_volume": hourly,
        "settlement_date": {
            "expected": expected,
            "seen": dict(sorted(settlement.items())),
            "consistent": set(settlement) <= {expected},
        },
    }


def _plain(line: dict[str, Any]) -> dict[str, Any]:
    return {**line, "response_codes": dict(sorted(line["response_codes"].items())),
            "reversals": dict(sorted(line["reversals"].items()))}


def write_csv(report: dict[str, Any], path: Path) -> None:
    """One row per terminal and type, then a TOTAL row; mixes as ``code:count`` lists."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in [*report["rows"], {"terminal": "TOTAL", "type": "all", **report["totals"]}]:
            writer.writerow([
                *(row[c] for c in CSV_COLUMNS[:8]),
                " ".join(f"{k}:{v}" for k, v in row["response_codes"].items()),
                " ".join(f"{k}:{v}" for k, v in row["reversals"].items()),
            ])


def render_text(report: dict[str, Any]) -> str:
    """An aligned table, every code explained under it, the settlement dates in words."""
    from tabulate import tabulate

    from ops.reports.codes import legend

    rows = [*report["rows"], {"terminal": "TOTAL", "type": "", **report["totals"]}]
    table = [[row["terminal"], row["type"], row["count"], row["approved"],
              row["requested_amount"], row["approved_amount"], row["settled_amount"],
              " ".join(f"{k}:{v}" for k, v in row["response_codes"].items()),
              " ".join(f"{k}:{v}" for k, v in row["reversals"].items())] for row in rows]
    headers = ["terminal", "type", "transactions", "approved", "requested", "approved amount",
               "settled amount", "response codes", "reversals"]
    out = [f"daily report {report['date']} (UTC); amounts in minor units, counts are 0200 "
           "transactions",
           tabulate(table, headers, tablefmt="simple", disable_numparse=False,
                    numalign="right")]
    totals = report["totals"]
    for line in (legend("response codes", totals["response_codes"]),
                 legend("reversal reasons", totals["reversals"], reversal=True)):
        if line:
            out.append(line)
    settlement = report["settlement_date"]
    # Field 15 is in every answer (0210, 0230, 0430): counted as answers, not transactions.
    seen = ", ".join(f"{date} ({count} answers)" for date, count in settlement["seen"].items())
    out.append(f"settlement dates (field 15 of every answer, MMDD): {seen or 'none'}; "
               + ("all are the day itself" if settlement["consistent"]
                  else f"NOT all the day itself ({settlement['expected']})"))
    return "\n".join(out)
