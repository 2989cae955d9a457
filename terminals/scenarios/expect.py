"""What a scenario expects, and the check that turns a run's results into mismatches.

A scenario's ``[expect]`` table states the outcome QA wants from the switch and the devices::

    [expect]
    response_codes = ["55", "00"]      # every 0200's field 39, in order ("--": no answer)
    transactions = [ { type = "withdrawal", outcome = "partial", dispensed = 20000,
                       reversal_reason = "32" } ]   # per transaction, only the keys given
    cards = ["returned"]               # per session: returned, retained, retained_not_taken
    cash_paid_out = 20000              # notes that left the cassettes (minor units)
    journal = ["dispense", "host.advice_queued"]  # events this run wrote (subset, any order)
    ledger_change = -20000             # see below
    advices_pending = 0                # default 0: every advice acknowledged at the end
    faults_fired = ["dispenser.pick_error#3"]

``ledger_change`` compares the first and the last balance inquiry of the run (field 54 of the
switch's own answers): both the ledger and the available balance must have moved by exactly this
much. The runner lets every advice reach the switch before each new card session, so holds are
settled by then and the two balances move together.

Why in the scenario: `atm-sim run NAME` exits non-zero when the switch misbehaves, so the
catalogue is a regression suite any switch (or a new version of this one) can be held to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TRANSACTION_KEYS = ("type", "response_code", "outcome", "dispensed", "reversal_reason",
                    "completion_amount", "cryptogram", "payee_name", "deposit_notes_returned",
                    "amount")
_KEYS = {"response_codes", "transactions", "cards", "cash_paid_out", "journal", "ledger_change",
         "advices_pending", "faults_fired"}
NO_ANSWER = "--"


class ExpectationError(ValueError):
    """The [expect] table is not in the documented format."""


@dataclass(frozen=True, slots=True)
class Expectation:
    response_codes: tuple[str, ...] | None = None
    transactions: tuple[Mapping[str, Any], ...] | None = None
    cards: tuple[str, ...] | None = None
    cash_paid_out: int | None = None
    journal: tuple[str, ...] = ()
    ledger_change: int | None = None
    advices_pending: int = 0
    faults_fired: tuple[str, ...] | None = None

    @property
    def needs_balances(self) -> bool:
        return self.ledger_change is not None


def parse_expectation(table: Any) -> Expectation:
    if not isinstance(table, Mapping):
        raise ExpectationError("expect must be a table")
    unknown = set(table) - _KEYS
    if unknown:
        raise ExpectationError(f"expect: unknown key(s): {', '.join(sorted(unknown))}")
    transactions = table.get("transactions")
    if transactions is not None:
        if not isinstance(transactions, list) or not all(
                isinstance(t, Mapping) and set(t) <= set(TRANSACTION_KEYS) for t in transactions):
            raise ExpectationError(f"expect.transactions: tables with keys from "
                                   f"{', '.join(TRANSACTION_KEYS)}")
        transactions = tuple(dict(t) for t in transactions)
    return Expectation(
        response_codes=_strings(table, "response_codes"),
        transactions=transactions,
        cards=_strings(table, "cards"),
        cash_paid_out=_int(table, "cash_paid_out"),
        journal=_strings(table, "journal") or (),
        ledger_change=_int(table, "ledger_change"),
        advices_pending=_int(table, "advices_pending") or 0,
        faults_fired=_strings(table, "faults_fired"),
    )


def _strings(table: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ExpectationError(f"expect.{key} must be a list of strings")
    return tuple(value)


def _int(table: Mapping[str, Any], key: str) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExpectationError(f"expect.{key} must be an integer (minor units)")
    return value


@dataclass
class Verdict:
    """The mismatches of one run (empty: the run met every expectation)."""

    mismatches: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def expect(self, what: str, expected: Any, actual: Any) -> None:
        if expected != actual:
            self.mismatches.append(f"{what}: expected {expected!r}, got {actual!r}")


def check(expectation: Expectation, result: Mapping[str, Any]) -> Verdict:
    """Compare a run's results (``run_scenario``'s dict) with what the scenario expects."""
    verdict = Verdict()
    records: Sequence[Mapping[str, Any]] = result["transactions"]
    if expectation.response_codes is not None:
        verdict.expect("response codes", list(expectation.response_codes),
                       [r.get("response_code") or NO_ANSWER for r in records])
    if expectation.transactions is not None:
        verdict.expect("number of transactions", len(expectation.transactions), len(records))
        for index, (wanted, record) in enumerate(zip(expectation.transactions, records,
                                                     strict=False)):
            for key, value in wanted.items():
                verdict.expect(f"transactions[{index}].{key}", value, record.get(key))
    if expectation.cards is not None:
        verdict.expect("cards", list(expectation.cards),
                       [s["card_outcome"] for s in result["sessions"]])
    if expectation.cash_paid_out is not None:
        verdict.expect("cash paid out", expectation.cash_paid_out, result["cash_paid_out"])
    missing = [e for e in expectation.journal if e not in result.get("journal_events", ())]
    verdict.expect("journal events missing", [], missing)
    verdict.expect("advices pending", expectation.advices_pending, result["advices_pending"])
    if expectation.faults_fired is not None:
        verdict.expect("faults fired", list(expectation.faults_fired), result["faults_fired"])
    if expectation.ledger_change is not None:
        _check_ledger(verdict, expectation.ledger_change, records)
    return verdict


def _check_ledger(verdict: Verdict, change: int, records: Sequence[Mapping[str, Any]]) -> None:
    inquiries = [r["balances"] for r in records if r["type"] == "balance" and r.get("balances")]
    if len(inquiries) < 2:
        verdict.mismatches.append("ledger change: needs two answered balance inquiries, got "
                                  f"{len(inquiries)}")
        return
    first, last = inquiries[0], inquiries[-1]
    verdict.expect("ledger change (ledger balance)", change, last["ledger"] - first["ledger"])
    verdict.expect("ledger change (available balance)", change,
                   last["available"] - first["available"])
