"""The ``Ledger`` protocol: what the switch may ask of the ledger (async, Trio).

Every money-moving call takes an idempotency ``key``: a repeat with the same arguments
returns the first result (even if balances changed since); the same key with different
arguments raises :class:`~ledger_adapter.errors.IdempotencyConflict`. The key namespace is
shared by all operations. ``expires_at``, the limit maxima and ``reference`` are taken from
the first call and are not part of the comparison (a retry computes a new ``expires_at``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

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
)


@runtime_checkable
class Ledger(Protocol):
    async def open_account(
        self,
        account_id: str,
        *,
        name: str,
        currency: str,
        balance: int = 0,
        status: str = "active",
        kind: str = "customer",
    ) -> Account:
        """Create an account; its opening balance is posted against the opening-equity account.

        Opening an existing account with the same currency and kind returns it unchanged (no
        second opening entry); another currency or kind raises ``AccountConflict``.
        """
        ...

    async def set_account_status(self, account_id: str, status: str) -> Account: ...

    async def get_account(self, account_id: str) -> Account: ...

    async def hold(
        self,
        key: str,
        *,
        account_id: str,
        amount: int,
        direction: str,
        expires_at: dt.datetime,
        expiry_action: str,
        daily_limit: DailyLimit | None = None,
        reference: Mapping[str, Any] | None = None,
        counterparty: str | None = None,
    ) -> HoldResult:
        """Reserve ``amount``: a debit hold (withdrawal) lowers available now; a credit hold
        (deposit) is a pending credit that changes no balance until captured.

        ``counterparty`` defaults to the ATM cash position of the account's currency.
        """
        ...

    async def capture(self, key: str, *, hold_id: int, amount: int | None = None) -> CaptureResult:
        """Post ``amount`` (default: all) of an open hold; a partial capture releases the rest."""
        ...

    async def release(self, key: str, *, hold_id: int) -> ReleaseResult: ...

    async def reverse(self, key: str, *, hold_id: int, amount: int | None = None) -> ReverseResult:
        """Post a correcting entry giving back ``amount`` (default: all not yet reversed) of a
        captured hold or transfer. Never refused for funds: an overdraft is flagged."""
        ...

    async def transfer(
        self,
        key: str,
        *,
        from_account: str,
        to_account: str,
        amount: int,
        daily_limit: DailyLimit | None = None,
        reference: Mapping[str, Any] | None = None,
    ) -> TransferResult: ...

    async def release_by_key(self, hold_key: str) -> str:
        """Spec 5.6: undo whatever a ``hold`` call under ``hold_key`` did, if anything.

        Returns one of ``RELEASE_BY_KEY_STATUSES``. When no hold exists yet the key is voided,
        so a hold call still in flight under it cannot take effect later.
        """
        ...

    async def balance(self, account_id: str) -> Balance: ...

    async def statement(self, account_id: str, limit: int = 10) -> list[StatementEntry]: ...

    async def get_hold(self, hold_id: int) -> Hold: ...

    async def sweep_expired(self, now: dt.datetime) -> int:
        """Resolve open holds expired at ``now`` by their expiry action; return how many."""
        ...

    async def check_invariants(self) -> None:
        """Raise ``InvariantViolation`` if money is not conserved or a cached total is wrong."""
        ...
