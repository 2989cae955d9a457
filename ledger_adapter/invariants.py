"""Money invariants, checked on the in-memory book (the SQL twin is ``ledger_check_invariants``).

1. Every journal entry balances, so all legs of one currency sum to zero.
2. A customer account's balance equals the sum of its legs.
3. held = the open debit holds; pending_credit = the open credit holds.
4. 0 <= reversed <= captured <= amount for every hold; an open hold has captured nothing.
5. A daily counter equals what its holds still count.
6. Available below zero only on an account debited by a correcting entry flagged for
   reconciliation (a reversal of an already-posted credit).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from ledger_adapter.errors import InvariantViolation

if TYPE_CHECKING:
    from ledger_adapter.memory_book import MemoryBook


def check_book(book: MemoryBook) -> None:
    _check_postings(book)
    _check_holds(book)
    _check_counters(book)


def _check_postings(book: MemoryBook) -> None:
    per_entry: dict[int, int] = defaultdict(int)
    per_account: dict[str, int] = defaultdict(int)
    flagged: set[str] = set()
    for leg in book.legs:
        per_entry[leg.entry_id] += leg.amount
        per_account[leg.account_id] += leg.amount
        if leg.reconciliation and leg.amount < 0:
            flagged.add(leg.account_id)
    unbalanced = [entry for entry, total in per_entry.items() if total != 0]
    if unbalanced:
        raise InvariantViolation(f"journal entries do not balance: {unbalanced[:5]}")
    for account in book.accounts.values():
        if account.kind != "customer":
            continue
        if account.balance != per_account[account.account_id]:
            raise InvariantViolation(f"account {account.account_id}: balance != sum of legs")
        if account.balance - account.held < 0 and account.account_id not in flagged:
            raise InvariantViolation(f"account {account.account_id}: overdrawn without a flag")


def _check_holds(book: MemoryBook) -> None:
    held: dict[str, int] = defaultdict(int)
    pending: dict[str, int] = defaultdict(int)
    for hold in book.holds.values():
        if not 0 <= hold.reversed_amount <= hold.captured_amount <= hold.amount:
            raise InvariantViolation(f"hold {hold.hold_id}: amounts out of order")
        if hold.state == "open":
            if hold.captured_amount:
                raise InvariantViolation(f"hold {hold.hold_id}: open but captured")
            target = held if hold.direction == "debit" else pending
            target[hold.account_id] += hold.amount
    for account in book.accounts.values():
        if account.held != held[account.account_id]:
            raise InvariantViolation(f"account {account.account_id}: held != open debit holds")
        if account.pending_credit != pending[account.account_id]:
            raise InvariantViolation(f"account {account.account_id}: pending != open credit holds")


def _check_counters(book: MemoryBook) -> None:
    amounts: dict[object, int] = defaultdict(int)
    counts: dict[object, int] = defaultdict(int)
    for hold in book.holds.values():
        if hold.counter is not None and hold.counted:
            amounts[hold.counter] += hold.counted_amount
            counts[hold.counter] += 1
    for counter_key, counter in book.counters.items():
        if counter.amount != amounts[counter_key] or counter.count != counts[counter_key]:
            raise InvariantViolation(f"daily counter {counter_key} does not match its holds")
