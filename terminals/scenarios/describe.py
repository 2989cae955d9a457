"""One transaction of a run as a person reads it (``atm-sim run`` and ``atm-switch demo``):
what the customer got, not the request's field 4. A balance inquiry shows the balances the
switch returned (its request carries no amount), a partial dispense the amount paid out of the
amount asked, a deposit or transfer its amount, a mini statement how many lines came back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from terminals.atm.screens import format_amount

_NO_AMOUNT = frozenset({"balance", "mini_statement", "pin_change", "payee_name_inquiry"})


def what_happened(item: Mapping[str, Any], language: str = "en") -> str:
    """The middle of the line: money moved or information returned."""
    amount = int(item.get("amount") or 0)
    balances = item.get("balances")
    if item.get("outcome") == "partial" and item.get("dispensed") is not None:
        return (f"dispensed {format_amount(int(item['dispensed']), language)} of "
                f"{format_amount(amount, language)}")
    if item.get("type") == "balance" or (balances and not amount):
        if not balances:
            return "no balance returned"
        return (f"balance {format_amount(balances['ledger'], language)}, available "
                f"{format_amount(balances['available'], language)}")
    if item.get("type") == "mini_statement":
        lines = item.get("statement")
        return f"{len(lines)} statement lines" if lines is not None else "no statement returned"
    if item.get("type") in _NO_AMOUNT and not amount:
        return "-"
    return format_amount(amount, language)


def transaction_line(item: Mapping[str, Any], language: str = "en") -> str:
    reversal = item.get("reversal_reason")
    return (f"  {item['type']:<18} {what_happened(item, language):<44} -> "
            f"{item.get('response_code') or '--'} {item.get('outcome', '')}"
            + (f" reversal {reversal}" if reversal else "")).rstrip()
