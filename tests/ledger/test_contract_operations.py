"""The ledger contract, operation by operation: every test runs against InMemoryLedger and
PostgresLedger alike.

Goal: opening accounts, holds, captures, releases, reversals, transfers and statements move
money exactly as spec 5 and 9 say. Method: each test sets up accounts, makes calls and
compares results and balances with values worked out by hand; the fixture checks the money
invariants afterwards. Limits, refusals and the recovery of unfinished holds are in
``test_contract_limits_and_recovery.py``.
"""

from __future__ import annotations

import datetime as dt

import pytest

from ledger_adapter import (
    AccountConflict,
    AccountNotFound,
    Balance,
    HoldNotFound,
    IdempotencyConflict,
    InvalidRequest,
    Ledger,
    cash_account_id,
)
from tests.ledger.conftest import (
    CURRENCY,
    LATER,
    open_customer,
    withdraw_hold,
)


async def test_open_account_posts_opening_balance(ledger: Ledger) -> None:
    await open_customer(ledger, balance=123_45)
    assert await ledger.balance("ACC1") == Balance(12_345, 12_345, 0, 0)
    account = await ledger.get_account("ACC1")
    assert (account.currency, account.status, account.kind) == (CURRENCY, "active", "customer")
    [line] = await ledger.statement("ACC1")
    assert (line.direction, line.amount, line.description) == ("C", 12_345, "OPENING BALANCE")


async def test_open_account_again_changes_nothing_but_other_currency_conflicts(
    ledger: Ledger,
) -> None:
    await open_customer(ledger, balance=500)
    await open_customer(ledger, balance=9_999)
    assert (await ledger.balance("ACC1")).ledger == 500
    with pytest.raises(AccountConflict):
        await ledger.open_account("ACC1", name="x", currency="840")
    with pytest.raises(AccountNotFound):
        await ledger.balance("NOPE")


async def test_debit_hold_lowers_available_only(ledger: Ledger) -> None:
    await open_customer(ledger)
    result = await withdraw_hold(ledger, "k1", "ACC1", 30_000)
    assert result.approved and result.hold_id is not None
    assert result.balance == Balance(100_000, 70_000, 30_000, 0)
    assert await ledger.balance("ACC1") == Balance(100_000, 70_000, 30_000, 0)


async def test_repeat_returns_first_result_and_changed_arguments_conflict(ledger: Ledger) -> None:
    await open_customer(ledger)
    first = await withdraw_hold(ledger, "k1", "ACC1", 30_000)
    await withdraw_hold(ledger, "k2", "ACC1", 10_000)
    # A retry computes a new expiry: still the same request.
    again = await ledger.hold(
        "k1", account_id="ACC1", amount=30_000, direction="debit",
        expires_at=LATER + dt.timedelta(seconds=5), expiry_action="capture",
    )  # fmt: skip
    assert again == first
    assert (await ledger.balance("ACC1")).held == 40_000
    with pytest.raises(IdempotencyConflict):
        await withdraw_hold(ledger, "k1", "ACC1", 30_100)
    with pytest.raises(IdempotencyConflict):
        await ledger.capture("k1", hold_id=first.hold_id or 0)


async def test_insufficient_funds_down_to_the_last_minor_unit(ledger: Ledger) -> None:
    await open_customer(ledger, balance=10_000)
    assert (await withdraw_hold(ledger, "k1", "ACC1", 10_001)).status == "insufficient_funds"
    assert (await withdraw_hold(ledger, "k2", "ACC1", 10_000)).approved
    declined = await withdraw_hold(ledger, "k3", "ACC1", 1)
    assert declined.status == "insufficient_funds" and declined.hold_id is None
    assert declined.balance == Balance(10_000, 0, 10_000, 0)


async def test_account_states(ledger: Ledger) -> None:
    await open_customer(ledger)
    await ledger.set_account_status("ACC1", "frozen")
    assert (await withdraw_hold(ledger, "k1", "ACC1", 100)).status == "account_not_active"
    await ledger.set_account_status("ACC1", "active")
    assert (await withdraw_hold(ledger, "k2", "ACC1", 100)).approved
    await ledger.set_account_status("ACC1", "closed")
    assert (await withdraw_hold(ledger, "k3", "ACC1", 100)).status == "account_not_active"
    missing = await withdraw_hold(ledger, "k4", "NOPE", 100)
    assert (missing.status, missing.balance) == ("account_not_found", None)
    cash = await withdraw_hold(ledger, "k5", cash_account_id(CURRENCY), 100)
    assert (cash.status, cash.balance) == ("account_not_active", None)
    with pytest.raises(AccountNotFound):
        await ledger.set_account_status("NOPE", "frozen")
    with pytest.raises(InvalidRequest):
        await ledger.set_account_status("ACC1", "sleeping")


async def test_deposit_is_pending_until_captured(ledger: Ledger) -> None:
    await open_customer(ledger, balance=1_000)
    deposit = await ledger.hold(
        "d1", account_id="ACC1", amount=50_000, direction="credit",
        expires_at=LATER, expiry_action="release",
    )  # fmt: skip
    assert deposit.approved
    # Spec 9: a pending deposit changes none of ledger, available, held.
    assert await ledger.balance("ACC1") == Balance(1_000, 1_000, 0, 50_000)
    captured = await ledger.capture("c1", hold_id=deposit.hold_id or 0, amount=40_000)
    assert (captured.status, captured.captured_amount, captured.released_amount) == (
        "captured",
        40_000,
        10_000,
    )
    assert await ledger.balance("ACC1") == Balance(41_000, 41_000, 0, 0)
    assert (await ledger.balance(cash_account_id(CURRENCY))).ledger == -40_000


async def test_capture_full_partial_and_exactly_once(ledger: Ledger) -> None:
    await open_customer(ledger)
    a = await withdraw_hold(ledger, "a", "ACC1", 30_000)
    b = await withdraw_hold(ledger, "b", "ACC1", 20_000)
    full = await ledger.capture("ca", hold_id=a.hold_id or 0)
    assert (full.status, full.captured_amount, full.released_amount) == ("captured", 30_000, 0)
    assert full.balance == Balance(70_000, 50_000, 20_000, 0)
    assert await ledger.capture("ca", hold_id=a.hold_id or 0) == full
    again = await ledger.capture("ca-2", hold_id=a.hold_id or 0)
    assert (again.status, again.captured_amount) == ("already_captured", 30_000)
    assert (await ledger.release("ra", hold_id=a.hold_id or 0)).status == "already_captured"
    too_much = await ledger.capture("cb0", hold_id=b.hold_id or 0, amount=20_001)
    assert too_much.status == "amount_exceeds_hold"
    partial = await ledger.capture("cb", hold_id=b.hold_id or 0, amount=5_000)
    assert (partial.captured_amount, partial.released_amount) == (5_000, 15_000)
    assert await ledger.balance("ACC1") == Balance(65_000, 65_000, 0, 0)
    assert (await ledger.balance(cash_account_id(CURRENCY))).ledger == 35_000
    hold = await ledger.get_hold(b.hold_id or 0)
    assert (hold.state, hold.captured_amount) == ("captured", 5_000)


async def test_release_exactly_once(ledger: Ledger) -> None:
    await open_customer(ledger)
    h = await withdraw_hold(ledger, "h", "ACC1", 30_000)
    released = await ledger.release("r1", hold_id=h.hold_id or 0)
    assert (released.status, released.released_amount) == ("released", 30_000)
    assert released.balance == Balance(100_000, 100_000, 0, 0)
    assert await ledger.release("r1", hold_id=h.hold_id or 0) == released
    assert (await ledger.release("r2", hold_id=h.hold_id or 0)).status == "already_released"
    assert (await ledger.capture("c", hold_id=h.hold_id or 0)).status == "already_released"
    assert (await ledger.reverse("v", hold_id=h.hold_id or 0)).status == "not_captured"


async def test_unknown_hold_is_a_typed_error(ledger: Ledger) -> None:
    with pytest.raises(HoldNotFound):
        await ledger.capture("c", hold_id=987_654)
    with pytest.raises(HoldNotFound):
        await ledger.release("r", hold_id=987_654)
    with pytest.raises(HoldNotFound):
        await ledger.get_hold(987_654)


async def test_reverse_after_capture_gives_money_back(ledger: Ledger) -> None:
    await open_customer(ledger)
    h = await withdraw_hold(ledger, "h", "ACC1", 30_000)
    await ledger.capture("c", hold_id=h.hold_id or 0)
    part = await ledger.reverse("v1", hold_id=h.hold_id or 0, amount=10_000)
    assert (part.status, part.reversed_amount, part.reconciliation) == ("reversed", 10_000, False)
    assert (await ledger.reverse("v2", hold_id=h.hold_id or 0, amount=20_001)).status == (
        "amount_exceeds_captured"
    )
    rest = await ledger.reverse("v3", hold_id=h.hold_id or 0)
    assert rest.reversed_amount == 20_000
    assert await ledger.balance("ACC1") == Balance(100_000, 100_000, 0, 0)
    assert (await ledger.balance(cash_account_id(CURRENCY))).ledger == 0
    lines = await ledger.statement("ACC1", limit=2)
    assert [(x.direction, x.amount, x.description) for x in lines] == [
        ("C", 20_000, "REVERSAL"),
        ("C", 10_000, "REVERSAL"),
    ]


async def test_reversing_a_spent_deposit_overdraws_and_is_flagged(ledger: Ledger) -> None:
    await open_customer(ledger, balance=0)
    d = await ledger.hold(
        "d", account_id="ACC1", amount=50_000, direction="credit", expires_at=LATER,
        expiry_action="release",
    )  # fmt: skip
    await ledger.capture("dc", hold_id=d.hold_id or 0)
    await withdraw_hold(ledger, "w", "ACC1", 40_000)
    reversed_ = await ledger.reverse("dr", hold_id=d.hold_id or 0)
    assert (reversed_.status, reversed_.reversed_amount, reversed_.reconciliation) == (
        "reversed",
        50_000,
        True,
    )
    assert reversed_.balance == Balance(0, -40_000, 40_000, 0)
    assert (await ledger.get_hold(d.hold_id or 0)).reconciliation


async def test_transfer_posts_both_sides_atomically(ledger: Ledger) -> None:
    await open_customer(ledger, "ACC1", 100_000)
    await open_customer(ledger, "ACC2", 5_000)
    t = await ledger.transfer("t1", from_account="ACC1", to_account="ACC2", amount=25_000)
    assert t.approved and t.balance == Balance(75_000, 75_000, 0, 0)
    assert await ledger.transfer("t1", from_account="ACC1", to_account="ACC2", amount=25_000) == t
    assert (await ledger.balance("ACC2")).ledger == 30_000
    short = await ledger.transfer("t2", from_account="ACC1", to_account="ACC2", amount=75_001)
    assert short.status == "insufficient_funds"
    missing = await ledger.transfer("t3", from_account="ACC1", to_account="NOPE", amount=1)
    assert missing.status == "account_not_found"
    await ledger.open_account("USD1", name="usd", currency="840")
    assert (
        await ledger.transfer("t4", from_account="ACC1", to_account="USD1", amount=1)
    ).status == ("currency_mismatch")
    await ledger.set_account_status("ACC2", "closed")
    assert (
        await ledger.transfer("t5", from_account="ACC1", to_account="ACC2", amount=1)
    ).status == ("account_not_active")
    back = await ledger.reverse("t1-rev", hold_id=t.hold_id or 0)
    assert back.reversed_amount == 25_000 and not back.reconciliation
    assert (await ledger.balance("ACC1")).ledger == 100_000
    assert (await ledger.balance("ACC2")).ledger == 5_000
    with pytest.raises(InvalidRequest):
        await ledger.transfer("t6", from_account="ACC1", to_account="ACC1", amount=1)


async def test_statement_newest_first_with_limit(ledger: Ledger) -> None:
    await open_customer(ledger, balance=100_000)
    for n in range(1, 4):
        h = await withdraw_hold(
            ledger, f"h{n}", "ACC1", n * 1_000, reference={"description": f"ATM {n}"}
        )
        await ledger.capture(f"c{n}", hold_id=h.hold_id or 0)
    lines = await ledger.statement("ACC1", limit=3)
    assert [(x.direction, x.amount, x.description) for x in lines] == [
        ("D", 3_000, "ATM 3"),
        ("D", 2_000, "ATM 2"),
        ("D", 1_000, "ATM 1"),
    ]
    assert len(await ledger.statement("ACC1", limit=10)) == 4
    with pytest.raises(InvalidRequest):
        await ledger.statement("ACC1", limit=0)
