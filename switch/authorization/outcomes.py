"""Typed outcomes of the authorization pipeline and THE table mapping them to field 39.

Every step returns (or raises) an :class:`Outcome`; nothing else in the package writes a
response code. The table below is the only place the spec 6 codes appear, so the mapping can
be read (and reviewed) in one screen.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class Outcome(enum.Enum):
    """Why a request was answered the way it was (one per row of spec 6, finer where useful)."""

    APPROVED = "approved"
    DO_NOT_HONOUR = "do_not_honour"
    FORMAT_ERROR = "format_error"
    TERMINAL_NOT_PERMITTED = "terminal_not_permitted"
    MAC_FAILED = "mac_failed"
    DUPLICATE_DIFFERENT_CONTENT = "duplicate_different_content"
    ORIGINAL_AFTER_REVERSAL = "original_after_reversal"
    CARD_NOT_ON_FILE = "card_not_on_file"
    CARD_LOST = "card_lost"
    CARD_STOLEN = "card_stolen"
    CARD_CLOSED = "card_closed"
    CARD_EXPIRED = "card_expired"
    CARD_BLOCKED = "card_blocked"
    WRONG_PIN = "wrong_pin"
    PIN_TRIES_EXCEEDED = "pin_tries_exceeded"
    ACCOUNT_NOT_ACTIVE = "account_not_active"
    FROM_ACCOUNT_NOT_CARDS = "from_account_not_cards"
    TRANSACTION_NOT_SUPPORTED = "transaction_not_supported"
    INVALID_AMOUNT = "invalid_amount"
    AMOUNT_LIMIT_EXCEEDED = "amount_limit_exceeded"
    DAILY_AMOUNT_EXCEEDED = "daily_amount_exceeded"
    DAILY_COUNT_EXCEEDED = "daily_count_exceeded"
    PAYEE_NOT_FOUND = "payee_not_found"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    UNAVAILABLE = "unavailable"
    SUSPECTED_FRAUD = "suspected_fraud"  # section 11: chip cryptogram failed or replayed
    UNABLE_TO_ROUTE = "unable_to_route"  # card-network hook: a route to no usable network
    SYSTEM_ERROR = "system_error"


RESPONSE_CODES: Mapping[Outcome, str] = MappingProxyType(
    {
        Outcome.APPROVED: "00",
        Outcome.DO_NOT_HONOUR: "05",
        Outcome.FORMAT_ERROR: "30",
        Outcome.TERMINAL_NOT_PERMITTED: "58",
        Outcome.MAC_FAILED: "63",
        Outcome.DUPLICATE_DIFFERENT_CONTENT: "94",
        Outcome.ORIGINAL_AFTER_REVERSAL: "94",
        Outcome.CARD_NOT_ON_FILE: "14",
        Outcome.CARD_LOST: "41",
        Outcome.CARD_STOLEN: "43",
        Outcome.CARD_CLOSED: "57",
        Outcome.CARD_EXPIRED: "54",
        Outcome.CARD_BLOCKED: "75",
        Outcome.WRONG_PIN: "55",
        Outcome.PIN_TRIES_EXCEEDED: "75",
        Outcome.ACCOUNT_NOT_ACTIVE: "57",
        Outcome.FROM_ACCOUNT_NOT_CARDS: "57",
        Outcome.TRANSACTION_NOT_SUPPORTED: "12",
        Outcome.INVALID_AMOUNT: "13",
        Outcome.AMOUNT_LIMIT_EXCEEDED: "61",
        Outcome.DAILY_AMOUNT_EXCEEDED: "61",
        Outcome.DAILY_COUNT_EXCEEDED: "65",
        Outcome.PAYEE_NOT_FOUND: "76",
        Outcome.INSUFFICIENT_FUNDS: "51",
        Outcome.UNAVAILABLE: "91",
        Outcome.SUSPECTED_FRAUD: "59",
        Outcome.UNABLE_TO_ROUTE: "92",
        Outcome.SYSTEM_ERROR: "96",
    }
)

# Spec 5.5: answers that are not recorded, so a corrected retransmission is processed normally.
UNRECORDED_CODES = frozenset({"30", "58", "63"})
# Spec 8: responses without a MAC.
UNMACED_CODES = frozenset({"30", "58"})


def response_code(outcome: Outcome) -> str:
    """Field 39 for an outcome."""
    return RESPONSE_CODES[outcome]


class Decline(Exception):
    """A pipeline step decided the answer; carries the outcome (never a raw code)."""

    def __init__(self, outcome: Outcome, detail: str = "") -> None:
        super().__init__(f"{outcome.value}: {detail}" if detail else outcome.value)
        self.outcome = outcome
        self.detail = detail


if set(RESPONSE_CODES) != set(Outcome):  # pragma: no cover - import-time consistency check
    raise RuntimeError("every Outcome needs a response code")
