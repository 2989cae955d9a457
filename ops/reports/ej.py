"""Reading the terminals' electronic journals (EJ) for the three-way reconciliation.

An EJ file is what ``atm-sim export-ej --date D`` writes: the day's journal records of one
terminal as JSON lines, already masked (no PAN beyond 6+4, never a PIN). Records used here:
``transaction_request`` (type, amount, STAN, RRN), ``transaction_response`` (field 39),
``transaction_no_response``, and ``host.advice_queued`` (the 0220/0420 the ATM owes the switch:
``settled`` is the final amount, ``reason`` a reversal's field 39, ``original_stan`` the 0200).

Only transactions with a ledger effect are compared (withdrawal, deposit, transfer).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

FINANCIAL_TYPES = frozenset({"withdrawal", "deposit", "transfer"})


class EjError(Exception):
    """An EJ file cannot be read."""


@dataclass
class EjTransaction:
    terminal: str
    stan: str
    type: str
    amount: int
    rrn: str | None
    response_code: str | None = None
    settled: int | None = None  # from the last completion or reversal the ATM queued
    reversal_reason: str | None = None

    @property
    def approved(self) -> bool:
        return self.response_code == "00"

    @property
    def final_amount(self) -> int | None:
        """What the ATM says the transaction finally moved; None when it cannot say."""
        if not self.approved:
            return 0
        if self.settled is not None:
            return self.settled
        return self.amount if self.type == "transfer" else None


def read_ej_files(paths: Iterable[Path], day: dt.date) -> dict[tuple[str, str], EjTransaction]:
    """Transactions keyed by (terminal, STAN of the 0200) from records dated ``day`` (UTC)."""
    transactions: dict[tuple[str, str], EjTransaction] = {}
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise EjError(f"{path}: {exc.strerror or exc}") from exc
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise EjError(f"{path}:{number}: not JSON") from None
            if str(record.get("at", ""))[:10] == day.isoformat():
                _apply(transactions, record)
    return transactions


def _apply(transactions: dict[tuple[str, str], EjTransaction], record: dict[str, object]) -> None:
    terminal, event = str(record.get("terminal_id", "")), record.get("event")
    if event == "transaction_request" and record.get("type") in FINANCIAL_TYPES:
        stan = str(record["stan"])
        transactions[(terminal, stan)] = EjTransaction(
            terminal, stan, str(record["type"]), int(str(record.get("amount", 0))),
            str(record["rrn"]) if record.get("rrn") else None)
        return
    key = (terminal, str(record.get("stan") if event != "host.advice_queued"
                         else record.get("original_stan")))
    transaction = transactions.get(key)
    if transaction is None:
        return
    if event == "transaction_response":
        transaction.response_code = str(record.get("response_code") or "") or None
    elif event == "host.advice_queued":
        transaction.settled = int(str(record.get("settled", 0)))
        if record.get("mti") == "0420":
            transaction.reversal_reason = str(record.get("reason") or "") or None
