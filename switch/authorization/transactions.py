"""Transaction types of spec 4, decoded from the processing code (field 3).

Positions 1-2 are the type, 3-4 the from-account type, 5-6 the to-account type. In this
version a card has one account: the account-type digits are echoed, never used to choose an
account, but positions the spec fixes at ``00`` (e.g. the to-account of a withdrawal) and
account types other than 00/10/20 make the code unsupported (``12``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from switch.authorization.outcomes import Decline, Outcome

ACCOUNT_TYPES = frozenset({"00", "10", "20"})


class Kind(enum.Enum):
    WITHDRAWAL = "01"
    DEPOSIT = "21"
    BALANCE_INQUIRY = "31"
    MINI_STATEMENT = "38"
    PAYEE_INQUIRY = "39"
    TRANSFER = "40"
    PIN_CHANGE = "90"


@dataclass(frozen=True, slots=True)
class TransactionRule:
    """What spec 4 says about one transaction type."""

    from_fixed: bool  # positions 3-4 must be 00
    to_fixed: bool  # positions 5-6 must be 00
    amount_positive: bool  # field 4 > 0 (else it must be 0)
    needs_pin: bool
    advice_classes: frozenset[str]  # message classes besides 0200 that carry this type


RULES: dict[Kind, TransactionRule] = {
    Kind.WITHDRAWAL: TransactionRule(False, True, True, True, frozenset({"0220", "0420"})),
    Kind.DEPOSIT: TransactionRule(True, False, True, True, frozenset({"0220", "0420"})),
    Kind.BALANCE_INQUIRY: TransactionRule(False, True, False, True, frozenset()),
    Kind.MINI_STATEMENT: TransactionRule(False, True, False, True, frozenset()),
    Kind.PAYEE_INQUIRY: TransactionRule(True, False, False, False, frozenset()),
    Kind.TRANSFER: TransactionRule(False, False, True, True, frozenset({"0420"})),
    Kind.PIN_CHANGE: TransactionRule(False, True, False, True, frozenset()),
}


@dataclass(frozen=True, slots=True)
class ProcessingCode:
    raw: str
    kind: Kind | None  # None: a type this switch does not support

    @property
    def rule(self) -> TransactionRule | None:
        return RULES[self.kind] if self.kind is not None else None


def parse_processing_code(raw: str) -> ProcessingCode:
    """Decode field 3 (six digits; the validator has checked that)."""
    try:
        kind: Kind | None = Kind(raw[0:2])
    except ValueError:
        kind = None
    return ProcessingCode(raw, kind)


def check_supported(code: ProcessingCode) -> Kind:
    """``12`` unless the code is a supported type with account digits spec 4 allows."""
    rule = code.rule
    if code.kind is None or rule is None:
        raise Decline(Outcome.TRANSACTION_NOT_SUPPORTED, f"transaction type {code.raw[0:2]}")
    from_type, to_type = code.raw[2:4], code.raw[4:6]
    if from_type not in ACCOUNT_TYPES or to_type not in ACCOUNT_TYPES:
        raise Decline(Outcome.TRANSACTION_NOT_SUPPORTED, f"account types {from_type}/{to_type}")
    if (rule.from_fixed and from_type != "00") or (rule.to_fixed and to_type != "00"):
        raise Decline(Outcome.TRANSACTION_NOT_SUPPORTED, f"processing code {code.raw}")
    return code.kind


def check_amount(kind: Kind, amount_minor: int, *, dispense_unit_minor: int) -> None:
    """``13``: zero/positive per type (spec 4); withdrawals in whole dispense units (spec 6)."""
    rule = RULES[kind]
    if rule.amount_positive and amount_minor <= 0:
        raise Decline(Outcome.INVALID_AMOUNT, "amount must be positive")
    if not rule.amount_positive and amount_minor != 0:
        raise Decline(Outcome.INVALID_AMOUNT, "amount must be zero")
    if kind is Kind.WITHDRAWAL and amount_minor % dispense_unit_minor != 0:
        raise Decline(Outcome.INVALID_AMOUNT, "not a multiple of the dispense unit")
