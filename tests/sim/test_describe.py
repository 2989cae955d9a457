"""A run's transactions as a person reads them (issue 20): a balance inquiry shows the balance
returned and never its request's amount, a partial dispense the amount paid out of the amount
asked, a mini statement its line count. Method: the records ``atm-sim run --json`` gives."""

from __future__ import annotations

from terminals.scenarios.describe import transaction_line


def test_balance_inquiry_shows_the_balance_returned() -> None:
    line = transaction_line({"type": "balance", "amount": 0, "response_code": "00",
                             "outcome": "approved",
                             "balances": {"ledger": 162_000, "available": 150_000}})
    assert "balance CNY 1,620.00, available CNY 1,500.00" in line and "CNY 0.00" not in line
    declined = transaction_line({"type": "balance", "amount": 0, "response_code": "55",
                                 "outcome": "declined"})
    assert "no balance returned" in declined and "CNY 0.00" not in declined


def test_partial_dispense_shows_what_was_paid_out() -> None:
    line = transaction_line({"type": "withdrawal", "amount": 50_000, "response_code": "00",
                             "outcome": "partial", "dispensed": 20_000,
                             "reversal_reason": "32"}, "zh")
    assert "dispensed 200.00元 of 500.00元" in line and line.endswith("reversal 32")


def test_other_lines() -> None:
    assert "3 statement lines" in transaction_line({
        "type": "mini_statement", "amount": 0, "statement": [{}, {}, {}]})
    assert "CNY 200.00" in transaction_line({"type": "transfer", "amount": 20_000})
    assert "CNY" not in transaction_line({"type": "pin_change", "amount": 0})
