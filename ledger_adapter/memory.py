"""``InMemoryLedger``: the ledger's semantics without a database, for simulation and tests.

Each call runs to completion without yielding in between, so calls are atomic; the
contract suite checks it behaves exactly like ``PostgresLedger``. This module is the async
API: argument checks, idempotent replay and the results; what each operation does to the
book is ``memory_operations.py``, the book itself ``memory_book.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import trio

from ledger_adapter import memory_operations as ops
from ledger_adapter import requests as rq
from ledger_adapter.errors import (
    AccountConflict,
    AccountNotFound,
    HoldNotFound,
    IdempotencyConflict,
)
from ledger_adapter.invariants import check_book
from ledger_adapter.memory_book import BookAccount, BookHold, Decision, MemoryBook
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
from ledger_adapter.requests import fingerprint_operation


class InMemoryLedger:
    """A ``Ledger`` held in process memory (lost on exit)."""

    def __init__(self) -> None:
        self.book = MemoryBook()
        # key -> (operation, fingerprint, decision)
        self._records: dict[str, tuple[str, str, Decision]] = {}

    # -- idempotency ------------------------------------------------------------------------
    def _replay(self, key: str, fingerprint: str) -> Decision | None:
        record = self._records.get(key)
        if record is None:
            return None
        if record[1] != fingerprint:
            raise IdempotencyConflict(key)
        return record[2]

    def _record(self, key: str, fingerprint: str, decision: Decision) -> Decision:
        operation = fingerprint_operation(fingerprint)
        self._records[key] = (operation, fingerprint, decision)
        return decision

    def _hold_of(self, hold_id: int) -> BookHold:
        hold = self.book.holds.get(hold_id)
        if hold is None:
            raise HoldNotFound(hold_id)
        return hold

    # -- accounts ---------------------------------------------------------------------------
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
        await trio.lowlevel.checkpoint()
        rq.check_account_fields(currency, balance, status, kind)
        existing = self.book.accounts.get(account_id)
        if existing is not None:
            if existing.currency != currency or existing.kind != kind:
                raise AccountConflict(
                    f"account {account_id!r} exists with another currency or kind"
                )
            return _account(existing)
        opening = balance if kind == "customer" else 0
        self.book.open_account(BookAccount(account_id, name, currency, status, kind), opening)
        return _account(self.book.accounts[account_id])

    async def set_account_status(self, account_id: str, status: str) -> Account:
        await trio.lowlevel.checkpoint()
        rq.check_status(status)
        account = self._account(account_id)
        account.status = status
        return _account(account)

    async def get_account(self, account_id: str) -> Account:
        await trio.lowlevel.checkpoint()
        return _account(self._account(account_id))

    def _account(self, account_id: str) -> BookAccount:
        account = self.book.accounts.get(account_id)
        if account is None:
            raise AccountNotFound(account_id)
        return account

    # -- holds ------------------------------------------------------------------------------
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
        await trio.lowlevel.checkpoint()
        rq.check_key(key)
        rq.check_amount(amount)
        rq.check_direction(direction)
        rq.check_expiry(expires_at, expiry_action)
        rq.check_daily_limit(daily_limit)
        fp = rq.hold_fingerprint(
            account_id, amount, direction, expiry_action, daily_limit, counterparty
        )
        decision = self._replay(key, fp) or self._record(
            key,
            fp,
            ops.place_hold(
                self.book,
                account_id,
                amount,
                direction,
                expires_at,
                expiry_action,
                daily_limit,
                reference,
                counterparty,
            ),
        )
        return HoldResult(decision.status, decision.hold_id, decision.balance)

    async def capture(self, key: str, *, hold_id: int, amount: int | None = None) -> CaptureResult:
        await trio.lowlevel.checkpoint()
        rq.check_key(key)
        amount = rq.check_optional_amount(amount)
        fp = rq.fingerprint("capture", hold_id, amount)
        decision = self._replay(key, fp) or self._record(
            key, fp, ops.capture(self.book, hold_id, amount)
        )
        if decision.status == "hold_not_found":
            raise HoldNotFound(hold_id)
        return CaptureResult(
            decision.status, hold_id, decision.amount_a, decision.amount_b, decision.balance
        )

    async def release(self, key: str, *, hold_id: int) -> ReleaseResult:
        await trio.lowlevel.checkpoint()
        rq.check_key(key)
        fp = rq.fingerprint("release", hold_id)
        decision = self._replay(key, fp) or self._record(key, fp, ops.release(self.book, hold_id))
        if decision.status == "hold_not_found":
            raise HoldNotFound(hold_id)
        return ReleaseResult(decision.status, hold_id, decision.amount_a, decision.balance)

    async def reverse(self, key: str, *, hold_id: int, amount: int | None = None) -> ReverseResult:
        await trio.lowlevel.checkpoint()
        rq.check_key(key)
        amount = rq.check_optional_amount(amount)
        fp = rq.fingerprint("reverse", hold_id, amount)
        decision = self._replay(key, fp) or self._record(
            key, fp, ops.reverse(self.book, hold_id, amount)
        )
        if decision.status == "hold_not_found":
            raise HoldNotFound(hold_id)
        return ReverseResult(
            decision.status, hold_id, decision.amount_a, decision.flag, decision.balance
        )

    async def transfer(
        self,
        key: str,
        *,
        from_account: str,
        to_account: str,
        amount: int,
        daily_limit: DailyLimit | None = None,
        reference: Mapping[str, Any] | None = None,
    ) -> TransferResult:
        await trio.lowlevel.checkpoint()
        rq.check_key(key)
        rq.check_amount(amount)
        rq.check_daily_limit(daily_limit)
        rq.check_transfer_accounts(from_account, to_account)
        fp = rq.transfer_fingerprint(from_account, to_account, amount, daily_limit)
        decision = self._replay(key, fp) or self._record(
            key,
            fp,
            ops.transfer(self.book, from_account, to_account, amount, daily_limit, reference),
        )
        return TransferResult(decision.status, decision.hold_id, decision.balance)

    async def release_by_key(self, hold_key: str) -> str:
        await trio.lowlevel.checkpoint()
        rq.check_key(hold_key)
        record = self._records.get(hold_key)
        if record is None:
            self._records[hold_key] = ("void", rq.VOID_FINGERPRINT, Decision("void"))
            return "no_hold"
        operation, _, decision = record
        if operation not in ("hold", "void"):
            return "not_a_hold"
        hold = self.book.holds.get(decision.hold_id or 0)
        if hold is None:
            return "no_hold"  # voided before, or the hold was declined
        if hold.state != "open":
            return "already_resolved"
        self.book.resolve(hold, 0)
        return "released"

    # -- queries ----------------------------------------------------------------------------
    async def balance(self, account_id: str) -> Balance:
        await trio.lowlevel.checkpoint()
        account = self._account(account_id)
        if account.kind == "customer":
            return account.snapshot()
        posted = sum(leg.amount for leg in self.book.legs if leg.account_id == account_id)
        return Balance(posted, posted, 0, 0)

    async def statement(self, account_id: str, limit: int = 10) -> list[StatementEntry]:
        await trio.lowlevel.checkpoint()
        rq.check_statement_limit(limit)
        self._account(account_id)
        legs = [leg for leg in reversed(self.book.legs) if leg.account_id == account_id][:limit]
        return [
            StatementEntry(
                leg.posted_at, "C" if leg.amount > 0 else "D", abs(leg.amount), leg.description
            )
            for leg in legs
        ]

    async def get_hold(self, hold_id: int) -> Hold:
        await trio.lowlevel.checkpoint()
        hold = self._hold_of(hold_id)
        return Hold(
            hold.hold_id,
            hold.kind,
            hold.account_id,
            hold.counterparty_id,
            hold.direction,
            hold.amount,
            hold.state,
            hold.captured_amount,
            hold.reversed_amount,
            hold.expires_at,
            hold.expiry_action,
            hold.presumed,
            hold.reconciliation,
        )

    async def sweep_expired(self, now: dt.datetime) -> int:
        await trio.lowlevel.checkpoint()
        return ops.sweep_expired(self.book, now)

    async def check_invariants(self) -> None:
        await trio.lowlevel.checkpoint()
        check_book(self.book)


def _account(account: BookAccount) -> Account:
    return Account(account.account_id, account.name, account.currency, account.status, account.kind)
