"""The simulated world: a few accounts, cards and terminals, as a fixture for the switch and
as the model's opening book. Small on purpose, so histories collide: two cards share an
account, one card has tight limits, one account is small enough to run out of funds, one
payee is frozen."""

from __future__ import annotations

from typing import Any

from terminals.hostlink.financial import CardData
from tests.authorization.harness import TMKS
from tests.simulate.model import Book, Limits, opening_book

CURRENCY = "156"
EXPIRY = "3012"

ACCOUNTS = {"SIMA": 600_000, "SIMB": 300_000, "SIMP": 100_000, "SIMF": 50_000}
FROZEN = {"SIMF"}
PAYEES = ("SIMP", "SIMF", "SIMA")  # 103 of a transfer: active, frozen (76), or another's own

# name -> (PAN, account, PIN, limits)
CARDS: dict[str, tuple[str, str, str, Limits]] = {
    "A1": ("6228480000100110006", "SIMA", "1234", Limits()),
    "A2": ("6228480000100220003", "SIMA", "4321",
           Limits(withdrawal_max=200_000, daily_withdrawal_max=400_000,
                  daily_withdrawal_count=3)),
    "B1": ("6228480000100330000", "SIMB", "1111", Limits()),
}
CARD_NAMES = tuple(CARDS)
TERMINALS = ("ATM001", "ATM002", "ATM003")
NEW_PINS = ("2468", "135790", "8642")
WRONG_PIN = "9090"


def card_data(name: str) -> CardData:
    return CardData(CARDS[name][0], EXPIRY)


def card_by_masked_pan(masked: str) -> str | None:
    """Map ``cards.pan_masked`` (first 6 + last 4) back to the card's name."""
    for name, (pan, *_rest) in CARDS.items():
        if masked.startswith(pan[:6]) and masked.endswith(pan[-4:]):
            return name
    return None


def fixture() -> dict[str, Any]:
    """The switch's fixture (spec 9 format)."""
    limits_keys = ("withdrawal_max", "daily_withdrawal_max", "daily_withdrawal_count")
    return {
        "accounts": [
            {"id": name, "name": f"Sim {name}", "currency": CURRENCY, "balance": balance,
             **({"status": "frozen"} if name in FROZEN else {})}
            for name, balance in ACCOUNTS.items()
        ],
        "cards": [
            {"pan": pan, "expiry": EXPIRY, "account": account, "pin": pin,
             "limits": {key: getattr(limits, key) for key in limits_keys}}
            for pan, account, pin, limits in CARDS.values()
        ],
        "terminals": [{"id": terminal, "tmk": TMKS[terminal]} for terminal in TERMINALS],
    }


def book() -> Book:
    return opening_book(ACCOUNTS, FROZEN,
                        {name: (account, pin, limits)
                         for name, (_pan, account, pin, limits) in CARDS.items()})
