"""``atm-switch reports reconcile``: the three-way reconciliation of one UTC day (对账).

Three records of the same money are compared: the switch's message records (what it
answered), the ledger's postings (what moved), and, when given, the terminals' electronic
journals (what the ATMs say they did). Every difference, and every event that the spec says
must be "listed for reconciliation", is an anomaly ``{kind, terminal, stan, rrn, amount,
detail}``; the day is ``balanced`` when there is none.

Kinds (``KINDS``):
- ``presumed_dispensed``: a withdrawal hold captured at expiry, no completion nor reversal came;
- ``deposit_released_by_expiry``: a deposit hold released at expiry;
- ``approved_not_posted``: an approved withdrawal/deposit/transfer whose ledger hold is missing;
- ``posted_without_approval``: a captured hold that no approved 0200 names;
- ``reversal_unmatched``: a 0420 whose original the switch never saw (spec 5.4);
- ``partial_dispense``: a 0420 that kept part of the amount (field 95, reason 32);
- ``correcting_overdraft``: a correcting entry that took an account below zero available;
- ``ej_missing_at_switch``: the journal has an answered transaction the switch has no record of;
- ``switch_missing_in_ej``: the switch approved a transaction the terminal's journal lacks;
- ``amount_mismatch``: both know it, but the final amounts differ;
- ``ej_key_collision``: two journal records claim one (terminal, STAN) for different
  transactions (journals of different runs given together): the comparison is unreliable there.

Journals are compared only for the terminals they cover. Amounts are integer minor units;
PANs never appear (neither side gives them to this module).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from ops.reports import sources
from ops.reports.daily import type_name
from ops.reports.ej import EjCollision, EjTransaction
from ops.reports.progress import Progress, silent
from switch.db.runtime import Database

KINDS = (
    "presumed_dispensed",
    "deposit_released_by_expiry",
    "approved_not_posted",
    "posted_without_approval",
    "reversal_unmatched",
    "partial_dispense",
    "correcting_overdraft",
    "ej_missing_at_switch",
    "switch_missing_in_ej",
    "amount_mismatch",
    "ej_key_collision",
)
# Answers that the switch does not record (spec 5.5), so their absence there is expected.
UNRECORDED_CODES = frozenset({"30", "58", "63"})
# The hourly passes plus the ledger-wide pass, for the progress bar.
PASSES = 25


def anomaly(kind: str, terminal: str | None, stan: str | None, rrn: str | None,
            amount: int | None, detail: str) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown anomaly kind {kind!r}")
    return {"kind": kind, "terminal": terminal, "stan": stan, "rrn": rrn,
            "amount": amount, "detail": detail}


def _effect(row: Mapping[str, Any]) -> dict[str, Any]:
    value = row["effect"]
    if isinstance(value, str):
        loaded: dict[str, Any] = json.loads(value)
        return loaded
    return dict(value or {})


async def reconcile(db: Database, day: dt.date,
                    journals: Mapping[tuple[str, str], EjTransaction] | None = None,
                    progress: Progress | None = None,
                    collisions: list[EjCollision] | None = None) -> dict[str, Any]:
    """The report for UTC ``day``; ``journals`` and ``collisions`` from
    :func:`ops.reports.ej.read_journals`."""
    progress = progress or silent()
    journals = journals or {}
    terminals = sorted({terminal for terminal, _ in journals})
    found: list[dict[str, Any]] = []
    switch_side: dict[tuple[str, str], dict[str, Any]] = {}
    totals: Counter[str] = Counter()
    for start, end in sources.hourly_chunks(day):
        await _switch_pass(db, start, end, terminals, found, switch_side, totals)
        progress.advance()
    day_start, day_end = sources.day_bounds(day)
    found += await _ledger_pass(db, day_start, day_end)
    ledger = await sources.ledger_totals(db, day_start, day_end)
    progress.advance()
    found += compare_journals(switch_side, journals)
    found += [anomaly("ej_key_collision", c.terminal, c.stan, None, None,
                      f"{c.detail}: {c.first} and {c.second}; journals of different runs? "
                      "give one run's journals") for c in collisions or []]
    found.sort(key=lambda a: (KINDS.index(a["kind"]), a["terminal"] or "", a["stan"] or ""))
    ej_final = sum(t.final_amount or 0 for t in journals.values())
    return {
        "date": day.isoformat(),
        "balanced": not found,
        "totals": {
            "switch": dict(totals),
            "ledger": {"customer_debits": ledger["debits"], "customer_credits": ledger["credits"]},
            "ej": {"terminals": len(terminals), "financial_transactions": len(journals),
                   "financial_approved": sum(1 for t in journals.values() if t.approved),
                   "settled_amount": ej_final} if journals else None,
            "anomalies": dict(Counter(a["kind"] for a in found)),
        },
        "anomalies": found,
    }


async def _switch_pass(db: Database, start: dt.datetime, end: dt.datetime,
                       terminals: list[str], found: list[dict[str, Any]],
                       switch_side: dict[tuple[str, str], dict[str, Any]],
                       totals: Counter[str]) -> None:
    for row in await sources.daily_requests(db, start, end):
        totals["transactions"] += int(row["n"])
        financial = row["type"] in sources.FINANCIAL_PREFIXES
        if financial:  # the kind the journals count: comparable side by side
            totals["financial_transactions"] += int(row["n"])
        if row["response_code"] == "00":
            totals["approved"] += int(row["n"])
            if financial:
                totals["financial_approved"] += int(row["n"])
                totals["approved_amount"] += int(row["requested"])
                totals["settled_amount"] += int(row["final"])
    for row in await sources.approved_not_posted(db, start, end):
        found.append(anomaly("approved_not_posted", row["terminal_id"], row["stan"], row["rrn"],
                             int(row["amount_minor"]),
                             f"approved {type_name(str(row['processing_code'])[:2])}; its "
                             "recorded effect names no ledger hold"))
    for row in await sources.reversals_needing_review(db, start, end):
        effect = _effect(row)
        if effect.get("result") == "original_unknown":
            found.append(anomaly("reversal_unmatched", row["terminal_id"], row["stan"],
                                 row["rrn"], int(row["amount_minor"]),
                                 f"reversal (reason {row['reason']}) of original STAN "
                                 f"{row['original_stan']}, which the switch never received"))
        else:
            kept = int(effect.get("kept", 0))
            found.append(anomaly("partial_dispense", row["terminal_id"], row["original_stan"],
                                 row["rrn"], kept,
                                 f"requested {row['amount_minor']}, dispensed {kept} "
                                 f"(reversal STAN {row['stan']})"))
    if terminals:
        for row in await sources.terminal_requests(db, start, end, terminals):
            switch_side[(row["terminal_id"], row["stan"])] = row


async def _ledger_pass(db: Database, start: dt.datetime, end: dt.datetime
                       ) -> list[dict[str, Any]]:
    found = []
    for row in await sources.expired_holds(db, start, end):
        if row["presumed"]:
            found.append(anomaly("presumed_dispensed", row["terminal"], row["stan"], row["rrn"],
                                 int(row["captured_amount"]),
                                 f"hold {row['hold_id']} captured at expiry: no completion "
                                 "or reversal arrived"))
        else:
            found.append(anomaly("deposit_released_by_expiry", row["terminal"], row["stan"],
                                 row["rrn"], int(row["amount"]),
                                 f"deposit hold {row['hold_id']} released at expiry: no "
                                 "completion arrived"))
    for row in await sources.correcting_overdrafts(db, start, end):
        found.append(anomaly("correcting_overdraft", row["terminal"], row["stan"], row["rrn"],
                             int(row["debit"]),
                             f"correcting entry {row['entry_id']} took account "
                             f"{row['account_id']} below zero available"))
    for row in await sources.posted_without_approval(db, start, end):
        found.append(anomaly("posted_without_approval", row["terminal"], row["stan"],
                             row["rrn"], int(row["captured_amount"]),
                             f"{row['kind']} {row['hold_id']} ({row['direction']}) captured "
                             "with no approved 0200 naming it"))
    return found


def compare_journals(switch_side: Mapping[tuple[str, str], Mapping[str, Any]],
                     journals: Mapping[tuple[str, str], EjTransaction]) -> list[dict[str, Any]]:
    """Switch records against the journals of the terminals the journals cover."""
    found = []
    for key, row in switch_side.items():
        if key not in journals and row["response_code"] == "00":
            found.append(anomaly("switch_missing_in_ej", key[0], key[1], row["rrn"],
                                 int(row["amount_minor"]),
                                 f"approved {type_name(str(row['processing_code'])[:2])} not "
                                 "in the terminal's journal"))
    for key, ej in journals.items():
        found_row = switch_side.get(key)
        if found_row is None:
            if ej.response_code is not None and ej.response_code not in UNRECORDED_CODES:
                found.append(anomaly("ej_missing_at_switch", ej.terminal, ej.stan, ej.rrn,
                                     ej.amount, f"journal: {ej.type} answered "
                                     f"{ej.response_code}; the switch has no record"))
            continue
        row = found_row
        switch_final = (row["final"] if row["response_code"] == "00" else 0)
        if switch_final is None or ej.final_amount is None:
            continue  # still open on one side: not decided yet
        if int(switch_final) != ej.final_amount:
            found.append(anomaly("amount_mismatch", ej.terminal, ej.stan, ej.rrn or row["rrn"],
                                 ej.final_amount - int(switch_final),
                                 f"{ej.type}: journal says {ej.final_amount}, switch and "
                                 f"ledger {int(switch_final)}"))
    return found


# How each side's totals read in the text report (the JSON keeps the keys).
_TOTAL_LABELS = {
    "transactions": "transactions (every 0200)",
    "terminals": "terminals",
    "approved": "of every 0200, answered 00",
    "financial_transactions": "withdrawals, deposits, transfers",
    "financial_approved": "withdrawals, deposits, transfers answered 00",
    "approved_amount": "approved amount",
    "settled_amount": "settled amount",
    "customer_debits": "debits on customer accounts",
    "customer_credits": "credits on customer accounts",
}


def render_text(report: dict[str, Any]) -> str:
    """Totals as a table per side, anomalies as a table, in words a person reads."""
    from tabulate import tabulate

    totals = report["totals"]
    lines = [f"reconciliation {report['date']} (UTC): "
             + ("balanced" if report["balanced"] else f"{len(report['anomalies'])} anomalies")
             + "; amounts in minor units"]
    sides = (("switch", "switch (message records)"), ("ledger", "ledger (postings)"),
             ("ej", "terminals' journals"))
    table = []
    for key, title in sides:
        values = totals.get(key)
        if values is None:
            table.append([title, "not compared (no --ej FILE given)", ""])
            continue
        for name, value in values.items():
            table.append([title, _TOTAL_LABELS.get(name, name.replace("_", " ")), value])
            title = ""
    lines.append(tabulate(table, ["side", "what", "value"], tablefmt="simple"))
    if totals["anomalies"]:
        lines.append(tabulate(sorted(totals["anomalies"].items()),
                              ["anomaly", "count"], tablefmt="simple"))
    if report["anomalies"]:
        lines.append(tabulate([[a["kind"], a["terminal"] or "", a["stan"] or "", a["rrn"] or "",
                                "" if a["amount"] is None else a["amount"], a["detail"]]
                               for a in report["anomalies"]],
                              ["anomaly", "terminal", "STAN", "RRN", "amount", "detail"],
                              tablefmt="simple", disable_numparse=True))
    return "\n".join(lines)


def metrics_text(report: dict[str, Any], now_unix_s: float) -> str:
    """Prometheus text format for node_exporter's textfile collector (alert
    AtmReconciliationImbalance reads ``atm_reconciliation_balanced``)."""
    date = report["date"]
    counts = Counter(a["kind"] for a in report["anomalies"])
    lines = [
        "# HELP atm_reconciliation_balanced 1 when the day's reconciliation found no anomaly",
        "# TYPE atm_reconciliation_balanced gauge",
        f'atm_reconciliation_balanced{{date="{date}"}} {1 if report["balanced"] else 0}',
        "# HELP atm_reconciliation_anomalies Anomalies the day's reconciliation found, by kind",
        "# TYPE atm_reconciliation_anomalies gauge",
        *(f'atm_reconciliation_anomalies{{date="{date}",kind="{kind}"}} {counts[kind]}'
          for kind in KINDS),
        "# HELP atm_reconciliation_last_run_timestamp_seconds When reconcile last ran",
        "# TYPE atm_reconciliation_last_run_timestamp_seconds gauge",
        f"atm_reconciliation_last_run_timestamp_seconds {now_unix_s:.0f}",
    ]
    return "\n".join(lines) + "\n"
