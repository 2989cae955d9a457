"""The load test's terminals, cards and accounts, derived from an index.

Every generator process must know each terminal's TMK and each card's PAN and
PIN without being sent them, and the fixture file loaded into the switch must
agree: so all of it is a pure function of the index (and a run seed for keys).
Terminal i uses card i, whose account is ``LA<i>``; transfers go to the next
terminal's account (a population of one gets a second, card-less account to pay).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

terminal_count_max = 999_999  # 8-character ids "LT" + 6 digits
card_expiry = "3012"  # YYMM, far in the future
# Large enough for hours at any rate, yet field 54 (12 digits) can still show it.
account_balance_minor = 50_000_000_000
currency_numeric = "156"  # CNY (spec 2)
# Card limits high enough that no run trips them (spec 6 defaults would:
# 20,000.00 a day is 200 withdrawals of 100.00).
card_limits: dict[str, int | None] = {
    "withdrawal_max": 250_000,
    "daily_withdrawal_max": 10**14,
    "daily_withdrawal_count": None,
}
pan_prefix = "622299"  # an issuer BIN of this test population (6 digits)


def luhn_check_digit(digits: str) -> str:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


@dataclass(frozen=True, slots=True)
class Terminal:
    """One load-test terminal with its card and accounts (test data only)."""

    index: int
    terminal_id: str
    tmk: bytes
    pan: str
    pin: str
    account_id: str
    payee_account_id: str


def terminal_id_of(index: int) -> str:
    return f"LT{index:06d}"


def account_id_of(index: int) -> str:
    return f"LA{index:06d}"


def _derived(seed: str, label: str, index: int, size: int) -> bytes:
    return hashlib.sha256(f"{seed}:{label}:{index}".encode()).digest()[:size]


def terminal(index: int, count: int, seed: str = "atm-loadtest") -> Terminal:
    """Terminal ``index`` (0-based) of a population of ``count``."""
    if not 0 <= index < count <= terminal_count_max:
        raise ValueError(f"terminal index {index} outside a population of {count}")
    body = pan_prefix + f"{index:09d}"
    pan = body + luhn_check_digit(body)
    pin_number = int.from_bytes(_derived(seed, "pin", index, 4), "big") % 10_000
    return Terminal(
        index=index,
        terminal_id=terminal_id_of(index),
        tmk=_derived(seed, "tmk", index, 16),
        pan=pan,
        pin=f"{pin_number:04d}",
        account_id=account_id_of(index),
        payee_account_id=account_id_of((index + 1) % max(count, 2)),
    )


def fixtures(count: int, seed: str = "atm-loadtest", *, cards: bool = True) -> dict[str, Any]:
    """The spec-9 fixture document for ``count`` terminals (optionally without cards)."""
    population = [terminal(i, count, seed) for i in range(count)]
    document: dict[str, Any] = {
        "terminals": [{"id": t.terminal_id, "tmk": t.tmk.hex().upper()} for t in population]
    }
    if cards:
        document["accounts"] = [
            {
                "id": account_id_of(index),
                "name": f"负载测试 {index}",
                "currency": currency_numeric,
                "balance": account_balance_minor,
            }
            for index in range(max(count, 2))
        ]
        document["cards"] = [
            {
                "pan": t.pan,
                "expiry": card_expiry,
                "account": t.account_id,
                "pin": t.pin,
                "limits": card_limits,
            }
            for t in population
        ]
    return document


def write_fixtures(
    path: Path, count: int, seed: str = "atm-loadtest", *, cards: bool = True
) -> None:
    path.write_text(json.dumps(fixtures(count, seed, cards=cards), ensure_ascii=False), "utf-8")
