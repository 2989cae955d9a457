"""What each money operation does to the in-memory book: one function per operation.

The twin of the bodies of the ledger's SQL functions (``ledger_hold_batch``,
``ledger_capture_one``, ``ledger_release_one``, ``ledger_reverse_one``,
``ledger_transfer_one``, ``ledger_sweep_expired``), each returning the ``Decision`` the
SQL records. Apart from ``memory.py``, which wraps them in the async ``Ledger`` API with the
argument checks and idempotent replay, so the money rules read (and compare with the SQL)
on their own. Synchronous: an operation runs to completion, so it is atomic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ledger_adapter.memory_book import BookAccount, BookHold, Decision, MemoryBook
from ledger_adapter.model import Balance, DailyLimit, cash_account_id


def place_hold(
    book: MemoryBook,
    account_id: str,
    amount: int,
    direction: str,
    expires_at: dt.datetime,
    expiry_action: str,
    daily_limit: DailyLimit | None,
    reference: Mapping[str, Any] | None,
    counterparty: str | None,
) -> Decision:
    status = book.check_parties(account_id, counterparty) or book.limit_status(daily_limit, amount)
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


def capture(book: MemoryBook, hold_id: int, amount: int | None) -> Decision:
    hold = book.holds.get(hold_id)
    if hold is None:
        return Decision("hold_not_found", hold_id)
    account = book.accounts[hold.account_id]
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
    book.resolve(hold, captured)
    return Decision("captured", hold_id, captured, hold.amount - captured, account.snapshot())


def release(book: MemoryBook, hold_id: int) -> Decision:
    hold = book.holds.get(hold_id)
    if hold is None:
        return Decision("hold_not_found", hold_id)
    account = book.accounts[hold.account_id]
    if hold.state != "open":
        status = "already_captured" if hold.state == "captured" else "already_released"
        return Decision(status, hold_id, 0, 0, account.snapshot())
    book.resolve(hold, 0)
    return Decision("released", hold_id, hold.amount, 0, account.snapshot())


def reverse(book: MemoryBook, hold_id: int, amount: int | None) -> Decision:
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


def transfer(
    book: MemoryBook,
    from_account: str,
    to_account: str,
    amount: int,
    daily_limit: DailyLimit | None,
    reference: Mapping[str, Any] | None,
) -> Decision:
    status = book.check_parties(from_account, to_account) or book.limit_status(daily_limit, amount)
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


def sweep_expired(book: MemoryBook, now: dt.datetime) -> int:
    """Resolve the open holds expired by ``now``: captured (presumed) or released for review."""
    expired = [
        hold
        for hold in book.holds.values()
        if hold.state == "open" and hold.expires_at is not None and hold.expires_at <= now
    ]
    for hold in expired:
        if hold.expiry_action == "capture":
            book.resolve(hold, hold.amount, presumed=True)
        else:
            book.resolve(hold, 0)
            hold.reconciliation = True
    return len(expired)


def _description(reference: Mapping[str, Any] | None) -> str | None:
    if reference is None or not reference.get("description"):
        return None
    return str(reference["description"])


def _snapshot(account: BookAccount | None) -> Balance | None:
    """Balances reported with a result: customer accounts only (as the SQL functions do)."""
    return None if account is None or account.kind != "customer" else account.snapshot()
