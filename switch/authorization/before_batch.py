"""What the 0200 path decides in Python before its batch, from the request and the card copy.

Pure functions (no I/O): the request-only codes (12, 13, 61 per transaction), the kind and
description the batch records, what a chip check tells the batch, whether a PIN block fits the
terminal's keys, expiry against the cached card, ``financial.py`` runs them in order.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from switch.authorization.caches import CardView
from switch.authorization.cards import is_expired
from switch.authorization.limits import check_per_transaction, check_per_transfer
from switch.authorization.outcomes import Decline, response_code
from switch.authorization.pin import PIN_BLOCK_FORMATS
from switch.authorization.request import FinancialRequest
from switch.authorization.security import TerminalKeys
from switch.authorization.transactions import (
    Kind,
    check_amount,
    check_supported,
    parse_processing_code,
)
from switch.emv.checks import ChipResult, Fallback, Fraud, Passed

KIND_NAMES: Final = {
    Kind.WITHDRAWAL: "withdrawal",
    Kind.DEPOSIT: "deposit",
    Kind.BALANCE_INQUIRY: "balance",
    Kind.MINI_STATEMENT: "statement",
    Kind.PAYEE_INQUIRY: "payee",
    Kind.TRANSFER: "transfer",
    Kind.PIN_CHANGE: "pin_change",
}
DESCRIPTIONS: Final = {
    "withdrawal": "ATM withdrawal",
    "deposit": "ATM deposit",
    "transfer": "ATM transfer",
}
UNUSABLE_STATUSES: Final = frozenset({"lost", "stolen", "closed", "blocked"})


def static_code(request: FinancialRequest, card: CardView | None, dispense_unit: int) -> str | None:
    """``12``, ``13`` or ``61`` (per transaction) from the request and the card's limits."""
    try:
        kind = check_supported(parse_processing_code(request.processing_code))
        check_amount(kind, request.amount_minor, dispense_unit_minor=dispense_unit)
        if card is not None and kind is Kind.WITHDRAWAL:
            check_per_transaction(card.limits, request.amount_minor)
        if card is not None and kind is Kind.TRANSFER:
            check_per_transfer(card.limits, request.amount_minor)
    except Decline as decline:
        return response_code(decline.outcome)
    return None


def chip_outcome(chip: ChipResult | None) -> tuple[str, int | None]:
    """What the batch needs of a chip check: none | fallback | fraud | passed, and the ATC."""
    if isinstance(chip, Passed):
        return "passed", chip.atc
    if isinstance(chip, Fallback):
        return "fallback", None
    if isinstance(chip, Fraud):
        return "fraud", None
    return "none", None


def pin_format_fits(keys: TerminalKeys, request: FinancialRequest) -> bool:
    """Spec 7: TDES terminals send format 0 in 52, AES terminals format 4 in 48/PB."""
    if request.pin_block is None:
        return True
    return PIN_BLOCK_FORMATS.get(keys.key_type) == request.pin_block_format


def card_expired(card: CardView, request: FinancialRequest, received_at: dt.datetime) -> bool:
    today = received_at.astimezone(dt.UTC).date()
    expiries = [card.expiry] + ([request.presented_expiry] if request.presented_expiry else [])
    return any(is_expired(expiry, today) for expiry in expiries)
