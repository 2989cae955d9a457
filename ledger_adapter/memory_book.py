"""The in-memory ledger's state and rules, synchronous and pure Python.

Same semantics as the PostgreSQL functions (``ledger_adapter/migrations/010x_ledger_*.sql``):
the contract suite in ``tests/ledger/`` runs against both. ``InMemoryLedger`` wraps this in
the async API.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

from ledger_adapter.model import Balance, DailyLimit, cash_account_id


@dataclasses.dataclass(slots=True)
class BookAccount:
    account_id: str
    name: str
    currency: str
    status: str
    kind: str
    balance: int = 0
    held: int = 0
    pending_credit: int = 0

    def snapshot(self) -> Balance:
        return Balance(self.balance, self.balance - self.held, self.held, self.pending_credit)


@dataclasses.dataclass(slots=True)
class BookHold:
    hold_id: int
    kind: str
    account_id: str
    counterparty_id: str
    direction: str
    amount: int
    state: str
    expires_at: dt.datetime | None
    expiry_action: str | None
    counter: tuple[str, dt.date] | None
    counted_amount: int = 0
    counted: bool = False
    captured_amount: int = 0
    reversed_amount: int = 0
    presumed: bool = False
    reconciliation: bool = False
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class BookLeg:
    entry_id: int
    account_id: str
    amount: int  # > 0 credit, < 0 debit
    posted_at: dt.datetime
    description: str
    reconciliation: bool


@dataclasses.dataclass(slots=True)
class Counter:
    amount: int = 0
    count: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one call as stored under its idempotency key."""

    status: str
    hold_id: int | None = None
    amount_a: int = 0
    amount_b: int = 0
    balance: Balance | None = None
    flag: bool = False


class MemoryBook:
    """Accounts, holds, legs and daily counters; every method applies one request."""

    def __init__(self) -> None:
        self.accounts: dict[str, BookAccount] = {}
        self.holds: dict[int, BookHold] = {}
        self.legs: list[BookLeg] = []
        self.counters: dict[tuple[str, dt.date], Counter] = {}
        self._hold_ids = itertools.count(1)
        self._entry_ids = itertools.count(1)

    # -- postings -------------------------------------------------------------------------
    def post(self, legs: list[tuple[str, int, str]], *, reconciliation: bool = False) -> None:
        """Append one journal entry; legs are (account, amount, description) summing to zero."""
        from ledger_adapter.errors import InvariantViolation

        if sum(amount for _, amount, _ in legs) != 0:
            raise InvariantViolation(f"journal entry does not balance: {legs}")
        entry_id = next(self._entry_ids)
        now = dt.datetime.now(dt.UTC)
        for account_id, amount, description in legs:
            if amount == 0:
                continue
            self.legs.append(
                BookLeg(entry_id, account_id, amount, now, description, reconciliation)
            )
            account = self.accounts[account_id]
            if account.kind == "customer":
                account.balance += amount

    def open_account(self, account: BookAccount, opening: int) -> None:
        for system_id, kind in (
            ("opening-equity:" + account.currency, "system"),
            (cash_account_id(account.currency), "cash"),
        ):
            if system_id not in self.accounts and system_id != account.account_id:
                self.accounts[system_id] = BookAccount(
                    system_id, system_id, account.currency, "active", kind
                )
        self.accounts[account.account_id] = account
        if opening:
            self.post(
                [
                    (account.account_id, opening, "OPENING BALANCE"),
                    ("opening-equity:" + account.currency, -opening, "OPENING BALANCE"),
                ]
            )

    # -- limits ---------------------------------------------------------------------------
    def limit_status(self, limit: DailyLimit | None, amount: int) -> str | None:
        if limit is None:
            return None
        counter = self.counters.get((limit.counter_id, limit.day), Counter())
        if limit.amount_max is not None and counter.amount + amount > limit.amount_max:
            return "daily_amount_exceeded"
        if limit.count_max is not None and counter.count + 1 > limit.count_max:
            return "daily_count_exceeded"
        return None

    def count(self, hold: BookHold, amount: int) -> None:
        if hold.counter is None:
            return
        counter = self.counters.setdefault(hold.counter, Counter())
        counter.amount += amount
        counter.count += 1
        hold.counted_amount = amount
        hold.counted = True

    def uncount(self, hold: BookHold, amount: int) -> None:
        """Give ``amount`` back to the hold's counter; the count goes back when nothing is left."""
        if hold.counter is None or not hold.counted:
            return
        counter = self.counters[hold.counter]
        counter.amount -= amount
        hold.counted_amount -= amount
        if hold.counted_amount == 0:
            counter.count -= 1
            hold.counted = False

    # -- decisions ------------------------------------------------------------------------
    def check_parties(self, account_id: str, counterparty_id: str | None) -> str | None:
        account = self.accounts.get(account_id)
        if account is None:
            return "account_not_found"
        if account.status != "active" or account.kind != "customer":
            return "account_not_active"
        other_id = counterparty_id or cash_account_id(account.currency)
        other = self.accounts.get(other_id)
        if other is None:
            return "account_not_found"
        if other.status != "active":
            return "account_not_active"
        if other.currency != account.currency:
            return "currency_mismatch"
        return None

    def new_hold_id(self) -> int:
        return next(self._hold_ids)

    def resolve(self, hold: BookHold, captured: int, *, presumed: bool = False) -> None:
        """Close an open hold: post ``captured`` of it and release the rest."""
        account = self.accounts[hold.account_id]
        if hold.direction == "debit":
            account.held -= hold.amount
            sign = -1
            description = hold.description or "ATM WITHDRAWAL"
        else:
            account.pending_credit -= hold.amount
            sign = 1
            description = hold.description or "ATM DEPOSIT"
        if captured:
            self.post(
                [
                    (hold.account_id, sign * captured, description),
                    (hold.counterparty_id, -sign * captured, description),
                ]
            )
        self.uncount(hold, hold.amount - captured)
        hold.state = "captured" if captured > 0 else "released"
        hold.captured_amount = captured
        if presumed:
            hold.presumed = True
            hold.reconciliation = True
