"""The balancing report (``atm-sim balance``): cash the cassettes say went to customers against
what the host has confirmed it debited for withdrawals at this terminal.

The host's view is what the host acknowledged: every withdrawal's 0230 (completion, the final
amount) or 0430 (reversal: the field 95 amount for a partial dispense, nothing otherwise), as the
journal recorded them. Advices still in the store-and-forward queue are listed as pending: until
they are answered the two sides may differ by exactly those amounts. The spec has no
reconciliation message (0500) for the terminal link, so this is the terminal-side report; tests
also compare it with the switch's own ledger.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from terminals.journal import REPLENISHED_EVENT, CassetteCounters, read_journal


@dataclass(frozen=True, slots=True)
class BalancingReport:
    cash_paid_out: int  # minor units, from the cassette counters (dispensed - retracted)
    host_confirmed: int  # minor units the host acknowledged as withdrawn
    withdrawals_confirmed: int
    advices_pending: int
    pending_amount: int  # settled amounts of withdrawal advices not yet acknowledged
    cassettes: list[dict[str, Any]]

    @property
    def difference(self) -> int:
        return self.cash_paid_out - self.host_confirmed

    @property
    def balanced(self) -> bool:
        return self.difference == 0 and self.advices_pending == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "difference": self.difference, "balanced": self.balanced}


def balancing_report(data_dir: Path) -> BalancingReport:
    """Read the terminal's journal and counters from its data directory."""
    counters_path = data_dir / "counters.json"
    counters = CassetteCounters.restore(json.loads(counters_path.read_text())) \
        if counters_path.exists() else CassetteCounters()
    confirmed = count = 0
    queued: dict[str, int] = {}
    earlier: set[str] = set()
    for record in read_journal(data_dir / "journal.jsonl"):
        if record["event"] == REPLENISHED_EVENT:  # the counters restarted: so does the count
            confirmed = count = 0
            earlier |= set(queued)  # still owed by the host, but cash of the previous load
            continue
        if record.get("type") != "withdrawal":
            continue
        # A repeat (0221/0421) is acknowledged under its repeat MTI: clear the repeat digit.
        mti = str(record.get("mti", ""))[:3]
        key = f"{mti}:{record.get('stan')}"
        if record["event"] == "host.advice_queued":
            queued[key] = int(record.get("settled", 0))
        elif record["event"] == "host.advice_acknowledged":
            queued.pop(key, None)
            if key in earlier:
                earlier.discard(key)
                continue
            confirmed += int(record.get("settled", 0))
            count += 1
    current = {key: amount for key, amount in queued.items() if key not in earlier}
    return BalancingReport(counters.amount_paid_out(), confirmed, count, len(queued),
                           sum(current.values()), counters.snapshot())


def describe_report(report: BalancingReport) -> str:
    from terminals.atm.screens import format_amount

    lines = ["cassette  denomination  initial  count  dispensed  rejected  retracted"]
    for unit in report.cassettes:
        lines.append(f"{unit['number']:>8}  {format_amount(unit['denomination']):>12}  "
                     f"{unit['initial']:>7}  {unit['count']:>5}  {unit['dispensed']:>9}  "
                     f"{unit['rejected']:>8}  {unit['retracted']:>9}")
    lines += [
        f"cash paid out (cassettes):        {format_amount(report.cash_paid_out)}",
        f"withdrawals confirmed by host:    {format_amount(report.host_confirmed)} "
        f"({report.withdrawals_confirmed} advices)",
        f"advices pending:                  {report.advices_pending} "
        f"({format_amount(report.pending_amount)})",
        f"difference:                       {format_amount(report.difference)}",
        "BALANCED" if report.balanced else "NOT BALANCED",
    ]
    return "\n".join(lines)
