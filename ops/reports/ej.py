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


@dataclass(frozen=True)
class EjCollision:
    """Two journal records claim one (terminal, STAN) key for different transactions: journals
    of different runs (or two terminals configured with one id) were given together."""

    terminal: str
    stan: str
    first: str  # file:line of the transaction kept
    second: str  # file:line of the one that collided with it
    detail: str


@dataclass
class EjRead:
    transactions: dict[tuple[str, str], EjTransaction]
    collisions: list[EjCollision]


def read_ej_files(paths: Iterable[Path], day: dt.date) -> dict[tuple[str, str], EjTransaction]:
    """Transactions keyed by (terminal, STAN of the 0200) from records dated ``day`` (UTC)."""
    return read_journals(paths, day).transactions


def read_journals(paths: Iterable[Path], day: dt.date) -> EjRead:
    """As :func:`read_ej_files`, and every key two different transactions claim: the later one
    replaces the earlier (as before), and the collision is reported so totals that differ have
    an anomaly to explain them."""
    transactions: dict[tuple[str, str], EjTransaction] = {}
    origins: dict[tuple[str, str], str] = {}
    collisions: list[EjCollision] = []
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
            if str(record.get("at", ""))[:10] != day.isoformat():
                continue
            where = f"{path}:{number}"
            clash = _collision(transactions, origins, record, where)
            if clash is not None:
                collisions.append(clash)
            _apply(transactions, record)
            if record.get("event") == "transaction_request":
                origins[(str(record.get("terminal_id", "")), str(record.get("stan")))] = where
    return EjRead(transactions, collisions)


def _collision(transactions: dict[tuple[str, str], EjTransaction],
               origins: dict[tuple[str, str], str], record: dict[str, object], where: str
               ) -> EjCollision | None:
    if record.get("event") != "transaction_request" or record.get("type") not in FINANCIAL_TYPES:
        return None
    key = (str(record.get("terminal_id", "")), str(record.get("stan")))
    earlier = transactions.get(key)
    if earlier is None:
        return None
    rrn = str(record["rrn"]) if record.get("rrn") else None
    same = (earlier.rrn == rrn and earlier.type == record.get("type")
            and earlier.amount == int(str(record.get("amount", 0))))
    if same:  # the same transaction journaled again (a repeat): not a collision
        return None
    return EjCollision(key[0], key[1], origins.get(key, "?"), where,
                       f"{earlier.type} {earlier.amount} (RRN {earlier.rrn}) and "
                       f"{record.get('type')} {record.get('amount')} (RRN {rrn})")


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
