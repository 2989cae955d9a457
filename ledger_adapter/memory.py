"""``InMemoryLedger``: the ledger's semantics without a database, for simulation and tests.

Each call runs to completion without yielding in between, so calls are atomic; the
contract suite checks it behaves exactly like ``PostgresLedger``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import trio

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
    cash_account_id,
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
            self._place_hold(
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

    def _place_hold(
        self,
        account_id: str,
        amount: int,
        direction: str,
        expires_at: dt.datetime,
        expiry_action: str,
        daily_limit: DailyLimit | None,
        reference: Mapping[str, Any] | None,
        counterparty: str | None,
    ) -> Decision:
        book = self.book
        status = book.check_parties(account_id, counterparty) or book.limit_status(
            daily_limit, amount
        )
        account = book.accounts.get(account_id)
        if status is None and account is not None and direction == "debit":
            if account.balance - account.held < amount:
                status = "insufficient_funds"
        if status is not None or account is None:
            return Decision(status or "account_not_found", balance=_snapshot(account))
        hold = BookHold(
            hold_id=book.new_hold_id(),
            kind="hold",
            account_id=account_id,
            counterparty_id=counterparty or cash_account_id(account.currency),
            direction=direction,
            amount=amount,
            state="open",
            expires_at=expires_at,
            expiry_action=expiry_action,
            counter=None if daily_limit is None else (daily_limit.counter_id, daily_limit.day),
            description=_description(reference),
        )
        book.holds[hold.hold_id] = hold
        book.count(hold, amount)
        if direction == "debit":
            account.held += amount
        else:
            account.pending_credit += amount
        return Decision("approved", hold.hold_id, balance=account.snapshot())

    async def capture(self, key: str, *, hold_id: int, amount: int | None = None) -> CaptureResult:
        await trio.lowlevel.checkpoint()
        rq.check_key(key)
        amount = rq.check_optional_amount(amount)
        fp = rq.fingerprint("capture", hold_id, amount)
        decision = self._replay(key, fp) or self._record(key, fp, self._capture(hold_id, amount))
        if decision.status == "hold_not_found":
            raise HoldNotFound(hold_id)
        return CaptureResult(
            decision.status, hold_id, decision.amount_a, decision.amount_b, decision.balance
        )

    def _capture(self, hold_id: int, amount: int | None) -> Decision:
        hold = self.book.holds.get(hold_id)
        if hold is None:
            return Decision("hold_not_found", hold_id)
        account = self.book.accounts[hold.account_id]
        if hold.state != "open":
            status = "already_captured" if hold.state == "captured" else "already_released"
            return Decision(
                status,
                hold_id,
                hold.captured_amount,
                hold.amount - hold.captured_amount,
                account.snapshot(),
            )
        captured = hold.amount if amount is None else amount
        if captured > hold.amount:
            return Decision("amount_exceeds_hold", hold_id, 0, 0, account.snapshot())
        self.book.resolve(hold, captured)
        return Decision("captured", hold_id, captured, hold.amount - captured, account.snapshot())

    async def release(self, key: str, *, hold_id: int) -> ReleaseResult:
        await trio.lowlevel.checkpoint()
        rq.check_key(key)
        fp = rq.fingerprint("release", hold_id)
        decision = self._replay(key, fp) or self._record(key, fp, self._release(hold_id))
        if decision.status == "hold_not_found":
            raise HoldNotFound(hold_id)
        return ReleaseResult(decision.status, hold_id, decision.amount_a, decision.balance)

    def _release(self, hold_id: int) -> Decision:
        hold = self.book.holds.get(hold_id)
        if hold is None:
            return Decision("hold_not_found", hold_id)
        account = self.book.accounts[hold.account_id]
        if hold.state != "open":
            status = "already_captured" if hold.state == "captured" else "already_released"
            return Decision(status, hold_id, 0, 0, account.snapshot())
        self.book.resolve(hold, 0)
        return Decision("released", hold_id, hold.amount, 0, account.snapshot())

    async def reverse(self, key: str, *, hold_id: int, amount: int | None = None) -> ReverseResult:
        await trio.lowlevel.checkpoint()
        rq.check_key(key)
        amount = rq.check_optional_amount(amount)
        fp = rq.fingerprint("reverse", hold_id, amount)
        decision = self._replay(key, fp) or self._record(key, fp, self._reverse(hold_id, amount))
        if decision.status == "hold_not_found":
            raise HoldNotFound(hold_id)
        return ReverseResult(
            decision.status, hold_id, decision.amount_a, decision.flag, decision.balance
        )

    def _reverse(self, hold_id: int, amount: int | None) -> Decision:
        book = self.book
        hold = book.holds.get(hold_id)
        if hold is None:
            return Decision("hold_not_found", hold_id)
        account = book.accounts[hold.account_id]
        if hold.state != "captured":
            return Decision("not_captured", hold_id, balance=account.snapshot())
        net = hold.captured_amount - hold.reversed_amount
        given_back = net if amount is None else amount
        if given_back > net:
            return Decision("amount_exceeds_captured", hold_id, balance=account.snapshot())
        sign = 1 if hold.direction == "debit" else -1
        debited = book.accounts[hold.counterparty_id if sign == 1 else hold.account_id]
        overdraws = debited.kind == "customer" and debited.balance - debited.held - given_back < 0
        book.post(
            [
                (hold.account_id, sign * given_back, "REVERSAL"),
                (hold.counterparty_id, -sign * given_back, "REVERSAL"),
            ],
            reconciliation=overdraws,
        )
        hold.reversed_amount += given_back
        hold.reconciliation = hold.reconciliation or overdraws
        book.uncount(hold, given_back)
        return Decision("reversed", hold_id, given_back, 0, account.snapshot(), overdraws)

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
            key, fp, self._transfer(from_account, to_account, amount, daily_limit, reference)
        )
        return TransferResult(decision.status, decision.hold_id, decision.balance)

    def _transfer(
        self,
        from_account: str,
        to_account: str,
        amount: int,
        daily_limit: DailyLimit | None,
        reference: Mapping[str, Any] | None,
    ) -> Decision:
        book = self.book
        status = book.check_parties(from_account, to_account) or book.limit_status(
            daily_limit, amount
        )
        source = book.accounts.get(from_account)
        if status is None and source is not None and source.balance - source.held < amount:
            status = "insufficient_funds"
        if status is not None or source is None:
            return Decision(status or "account_not_found", balance=_snapshot(source))
        hold = BookHold(
            hold_id=book.new_hold_id(),
            kind="transfer",
            account_id=from_account,
            counterparty_id=to_account,
            direction="debit",
            amount=amount,
            state="captured",
            expires_at=None,
            expiry_action=None,
            counter=None if daily_limit is None else (daily_limit.counter_id, daily_limit.day),
            captured_amount=amount,
            description=_description(reference),
        )
        book.holds[hold.hold_id] = hold
        book.count(hold, amount)
        book.post(
            [
                (from_account, -amount, hold.description or "TRANSFER OUT"),
                (to_account, amount, hold.description or "TRANSFER IN"),
            ]
        )
        return Decision("approved", hold.hold_id, amount, 0, source.snapshot())

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
        expired = [
            hold
            for hold in self.book.holds.values()
            if hold.state == "open" and hold.expires_at is not None and hold.expires_at <= now
        ]
        for hold in expired:
            if hold.expiry_action == "capture":
                self.book.resolve(hold, hold.amount, presumed=True)
            else:
                self.book.resolve(hold, 0)
                hold.reconciliation = True
        return len(expired)

    async def check_invariants(self) -> None:
        await trio.lowlevel.checkpoint()
        check_book(self.book)


def _account(account: BookAccount) -> Account:
    return Account(account.account_id, account.name, account.currency, account.status, account.kind)


def _description(reference: Mapping[str, Any] | None) -> str | None:
    if reference is None or not reference.get("description"):
        return None
    return str(reference["description"])


def _snapshot(account: BookAccount | None) -> Balance | None:
    """Balances reported with a result: customer accounts only (as the SQL functions do)."""
    return None if account is None or account.kind != "customer" else account.snapshot()
