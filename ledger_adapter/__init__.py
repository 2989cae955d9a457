"""The ledger: where money moves (issue 4).

``Ledger`` is the async (Trio) interface; ``PostgresLedger`` the durable implementation with
group commit; ``InMemoryLedger`` the same semantics in memory. See ``docs/ledger.md``.
"""

from ledger_adapter.errors import (
    AccountConflict,
    AccountNotFound,
    HoldNotFound,
    IdempotencyConflict,
    InvalidRequest,
    InvariantViolation,
    LedgerError,
    LedgerUnavailable,
)
from ledger_adapter.interface import Ledger
from ledger_adapter.memory import InMemoryLedger
from ledger_adapter.model import (
    Account,
    Balance,
    CaptureResult,
    DailyLimit,
    Hold,
    HoldResult,
    ReleaseResult,
    ReverseResult,
    StatementEntry,
    TransferResult,
    cash_account_id,
)

__all__ = [
    "Account",
    "AccountConflict",
    "AccountNotFound",
    "Balance",
    "CaptureResult",
    "DailyLimit",
    "Hold",
    "HoldNotFound",
    "HoldResult",
    "IdempotencyConflict",
    "InMemoryLedger",
    "InvalidRequest",
    "InvariantViolation",
    "Ledger",
    "LedgerError",
    "LedgerUnavailable",
    "ReleaseResult",
    "ReverseResult",
    "StatementEntry",
    "TransferResult",
    "cash_account_id",
]
