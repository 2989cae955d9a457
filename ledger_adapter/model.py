"""Value types of the ledger API: accounts, limits, balances and the result of each call.

Amounts are integers in minor units everywhere. Results are frozen so a stored result
returned for a repeated idempotency key cannot be changed by its receiver.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Literal

Direction = Literal["debit", "credit"]
ExpiryAction = Literal["capture", "release"]
AccountStatus = Literal["active", "frozen", "closed"]
AccountKind = Literal["customer", "cash", "settlement", "system"]

DIRECTIONS: frozenset[str] = frozenset({"debit", "credit"})
EXPIRY_ACTIONS: frozenset[str] = frozenset({"capture", "release"})
ACCOUNT_STATUSES: frozenset[str] = frozenset({"active", "frozen", "closed"})
# Customer accounts keep their balance in their row (checked under a row lock); every other
# kind is a "hot" position written as append-only legs so it never serialises transactions.
ACCOUNT_KINDS: frozenset[str] = frozenset({"customer", "cash", "settlement", "system"})

# Outcomes of hold / transfer. The order of the checks follows spec 6:
# account_not_found, account_not_active (57), currency_mismatch, daily amount (61),
# daily count (65), insufficient_funds (51).
HOLD_STATUSES: frozenset[str] = frozenset(
    {
        "approved",
        "insufficient_funds",
        "daily_amount_exceeded",
        "daily_count_exceeded",
        "account_not_active",
        "account_not_found",
        "currency_mismatch",
    }
)
CAPTURE_STATUSES: frozenset[str] = frozenset(
    {"captured", "already_captured", "already_released", "amount_exceeds_hold"}
)
RELEASE_STATUSES: frozenset[str] = frozenset({"released", "already_captured", "already_released"})
REVERSE_STATUSES: frozenset[str] = frozenset(
    {"reversed", "not_captured", "amount_exceeds_captured"}
)
# release_by_key outcomes: a hold was released now; no hold was ever placed under the key
# (the key is now void, so a late hold under it is refused); the hold was already resolved
# (captured or released) so nothing changed; the key names something other than a hold.
RELEASE_BY_KEY_STATUSES: frozenset[str] = frozenset(
    {"released", "no_hold", "already_resolved", "not_a_hold"}
)

# The prefix of the default counterparty of a hold: the ATM cash position per currency.
CASH_ACCOUNT_PREFIX = "atm-cash:"
# Opening balances are posted against this system account (per currency), so money is
# conserved from the first entry on.
OPENING_ACCOUNT_PREFIX = "opening-equity:"


def cash_account_id(currency: str) -> str:
    """Id of the ATM cash position for ``currency`` (created with the first account)."""
    return CASH_ACCOUNT_PREFIX + currency


def opening_account_id(currency: str) -> str:
    return OPENING_ACCOUNT_PREFIX + currency


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    name: str
    currency: str
    status: str
    kind: str


@dataclasses.dataclass(frozen=True, slots=True)
class Balance:
    """Spec 9: held = open debit holds; available = ledger - held.

    ``pending_credit`` (open deposit holds) changes none of the other three.
    """

    ledger: int
    available: int
    held: int
    pending_credit: int


@dataclasses.dataclass(frozen=True, slots=True)
class DailyLimit:
    """A per-card daily counter checked and counted atomically with a hold or transfer.

    ``day`` is the UTC date the switch received the request (spec 6). None = no limit.
    """

    counter_id: str
    day: dt.date
    amount_max: int | None = None
    count_max: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class HoldResult:
    status: str
    hold_id: int | None
    balance: Balance | None

    @property
    def approved(self) -> bool:
        return self.status == "approved"


@dataclasses.dataclass(frozen=True, slots=True)
class CaptureResult:
    status: str
    hold_id: int
    captured_amount: int
    released_amount: int
    balance: Balance | None


@dataclasses.dataclass(frozen=True, slots=True)
class ReleaseResult:
    status: str
    hold_id: int
    released_amount: int
    balance: Balance | None


@dataclasses.dataclass(frozen=True, slots=True)
class ReverseResult:
    status: str
    hold_id: int
    reversed_amount: int
    # True when the correcting entry took the debited account below zero available.
    reconciliation: bool
    balance: Balance | None


@dataclasses.dataclass(frozen=True, slots=True)
class TransferResult:
    status: str
    # A transfer is stored as an already-captured hold, so it can be reversed by this id.
    hold_id: int | None
    balance: Balance | None

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    @property
    def transfer_id(self) -> int | None:
        return self.hold_id


@dataclasses.dataclass(frozen=True, slots=True)
class Hold:
    """A hold as stored: for the switch (0420 handling) and for reconciliation reports."""

    hold_id: int
    kind: str  # "hold" | "transfer"
    account_id: str
    counterparty_id: str
    direction: str
    amount: int
    state: str  # "open" | "captured" | "released"
    captured_amount: int
    reversed_amount: int
    expires_at: dt.datetime | None
    expiry_action: str | None
    presumed: bool
    reconciliation: bool


@dataclasses.dataclass(frozen=True, slots=True)
class StatementEntry:
    posted_at: dt.datetime
    direction: str  # "C" | "D"
    amount: int
    description: str
