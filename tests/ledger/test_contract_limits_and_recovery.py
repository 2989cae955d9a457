"""The ledger contract's guards: every test runs against InMemoryLedger and PostgresLedger
alike.

Goal: daily limits and the spec's order of checks, refused input, concurrent holds, and the
resolution of holds nobody finished (release by key, the expiry sweep) behave as spec 5, 6 and
9 say. Method: each test sets up accounts, makes calls and compares results and balances with
values worked out by hand; the fixture checks the money invariants afterwards. The operations
themselves are in ``test_contract_operations.py``.
"""

from __future__ import annotations

import datetime as dt

import pytest

from ledger_adapter import (
    Balance,
    DailyLimit,
    IdempotencyConflict,
    InvalidRequest,
    Ledger,
)
from tests.ledger.conftest import (
    LATER,
    TODAY,
    concurrent_withdraw_statuses,
    open_customer,
    withdraw_hold,
)


async def test_daily_amount_limit_counts_and_gives_back(ledger: Ledger) -> None:
    await open_customer(ledger, balance=10_000_000)
    limit = DailyLimit("card-1", TODAY, amount_max=50_000, count_max=None)
    a = await withdraw_hold(ledger, "a", "ACC1", 30_000, daily_limit=limit)
    assert a.approved
    assert (await withdraw_hold(ledger, "b", "ACC1", 20_001, daily_limit=limit)).status == (
        "daily_amount_exceeded"
    )
    # Another day, another counter.
    other_day = DailyLimit("card-1", TODAY + dt.timedelta(days=1), amount_max=50_000)
    assert (await withdraw_hold(ledger, "b2", "ACC1", 50_000, daily_limit=other_day)).approved
    # A partial capture counts at the captured amount (spec 6).
    await ledger.capture("ca", hold_id=a.hold_id or 0, amount=10_000)
    assert (await withdraw_hold(ledger, "c", "ACC1", 40_000, daily_limit=limit)).approved
    c_id = (await withdraw_hold(ledger, "c", "ACC1", 40_000, daily_limit=limit)).hold_id or 0
    assert (
        await withdraw_hold(ledger, "d", "ACC1", 1, daily_limit=limit)
    ).status == "daily_amount_exceeded"
    await ledger.release("rc", hold_id=c_id)
    assert (await withdraw_hold(ledger, "e", "ACC1", 40_000, daily_limit=limit)).approved
    # A reversal after posting gives its amount back too.
    await ledger.reverse("ra", hold_id=a.hold_id or 0, amount=10_000)
    assert (await withdraw_hold(ledger, "f", "ACC1", 10_000, daily_limit=limit)).approved


async def test_daily_count_limit(ledger: Ledger) -> None:
    await open_customer(ledger, balance=10_000_000)
    limit = DailyLimit("card-1", TODAY, amount_max=None, count_max=2)
    first = await withdraw_hold(ledger, "a", "ACC1", 100, daily_limit=limit)
    assert (await withdraw_hold(ledger, "b", "ACC1", 100, daily_limit=limit)).approved
    assert (
        await withdraw_hold(ledger, "c", "ACC1", 100, daily_limit=limit)
    ).status == "daily_count_exceeded"
    await ledger.capture("ca", hold_id=first.hold_id or 0)
    # A fully reversed withdrawal counts toward nothing (spec 6).
    await ledger.reverse("ra", hold_id=first.hold_id or 0)
    assert (await withdraw_hold(ledger, "d", "ACC1", 100, daily_limit=limit)).approved
    transfer_limit = DailyLimit("card-1", TODAY, amount_max=None, count_max=3)
    await open_customer(ledger, "ACC2", 0)
    t = await ledger.transfer(
        "t", from_account="ACC1", to_account="ACC2", amount=5, daily_limit=transfer_limit
    )
    assert t.approved
    t2 = await ledger.transfer(
        "t2", from_account="ACC1", to_account="ACC2", amount=5, daily_limit=transfer_limit
    )
    assert t2.status == "daily_count_exceeded"


async def test_checks_run_in_spec_order(ledger: Ledger) -> None:
    # Spec 6: 57 (account) before 61 (daily) before 51 (funds).
    await open_customer(ledger, balance=100)
    limit = DailyLimit("card-1", TODAY, amount_max=50)
    assert (
        await withdraw_hold(ledger, "a", "ACC1", 200, daily_limit=limit)
    ).status == "daily_amount_exceeded"
    await ledger.set_account_status("ACC1", "frozen")
    assert (
        await withdraw_hold(ledger, "b", "ACC1", 200, daily_limit=limit)
    ).status == "account_not_active"


async def test_release_by_key(ledger: Ledger) -> None:
    await open_customer(ledger)
    h = await withdraw_hold(ledger, "late", "ACC1", 30_000)
    assert await ledger.release_by_key("late") == "released"
    assert await ledger.balance("ACC1") == Balance(100_000, 100_000, 0, 0)
    assert await ledger.release_by_key("late") == "already_resolved"
    assert (await ledger.get_hold(h.hold_id or 0)).state == "released"
    # No hold yet: the key is voided, so a late hold under it can never take effect.
    assert await ledger.release_by_key("never") == "no_hold"
    with pytest.raises(IdempotencyConflict):
        await withdraw_hold(ledger, "never", "ACC1", 100)
    assert (await ledger.balance("ACC1")).held == 0
    assert (await withdraw_hold(ledger, "poor", "ACC1", 10**9)).status == "insufficient_funds"
    assert await ledger.release_by_key("poor") == "no_hold"
    captured = await withdraw_hold(ledger, "cap", "ACC1", 100)
    await ledger.capture("cap-c", hold_id=captured.hold_id or 0)
    assert await ledger.release_by_key("cap") == "already_resolved"
    assert await ledger.release_by_key("cap-c") == "not_a_hold"


async def test_sweep_resolves_expired_holds_by_their_action(ledger: Ledger) -> None:
    await open_customer(ledger, balance=100_000)
    now = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
    soon = now - dt.timedelta(seconds=1)
    w = await ledger.hold(
        "w",
        account_id="ACC1",
        amount=30_000,
        direction="debit",
        expires_at=soon,
        expiry_action="capture",
    )
    d = await ledger.hold(
        "d",
        account_id="ACC1",
        amount=7_000,
        direction="credit",
        expires_at=soon,
        expiry_action="release",
    )
    later = await ledger.hold(
        "l",
        account_id="ACC1",
        amount=1_000,
        direction="debit",
        expires_at=now + dt.timedelta(minutes=10),
        expiry_action="capture",
    )
    assert await ledger.sweep_expired(now) == 2
    assert await ledger.sweep_expired(now) == 0
    withdrawal = await ledger.get_hold(w.hold_id or 0)
    assert (
        withdrawal.state,
        withdrawal.captured_amount,
        withdrawal.presumed,
        withdrawal.reconciliation,
    ) == (
        "captured",
        30_000,
        True,
        True,
    )
    deposit = await ledger.get_hold(d.hold_id or 0)
    assert (deposit.state, deposit.presumed, deposit.reconciliation) == ("released", False, True)
    assert (await ledger.get_hold(later.hold_id or 0)).state == "open"
    assert await ledger.balance("ACC1") == Balance(70_000, 69_000, 1_000, 0)
    assert (
        await ledger.capture("late-completion", hold_id=w.hold_id or 0)
    ).status == "already_captured"


@pytest.mark.parametrize("amount", [0, -1, 1.5, True, 2**63])
async def test_bad_amounts_are_refused_before_anything_is_recorded(
    ledger: Ledger, amount: object
) -> None:
    await open_customer(ledger)
    with pytest.raises(InvalidRequest):
        await withdraw_hold(ledger, "k", "ACC1", amount)  # type: ignore[arg-type]
    assert (await withdraw_hold(ledger, "k", "ACC1", 100)).approved


async def test_bad_arguments_are_refused(ledger: Ledger) -> None:
    await open_customer(ledger)
    naive = dt.datetime(2030, 1, 1)
    with pytest.raises(InvalidRequest):
        await ledger.hold(
            "k",
            account_id="ACC1",
            amount=1,
            direction="debit",
            expires_at=naive,
            expiry_action="capture",
        )
    with pytest.raises(InvalidRequest):
        await ledger.hold(
            "k",
            account_id="ACC1",
            amount=1,
            direction="sideways",
            expires_at=LATER,
            expiry_action="capture",
        )
    with pytest.raises(InvalidRequest):
        await ledger.hold(
            "",
            account_id="ACC1",
            amount=1,
            direction="debit",
            expires_at=LATER,
            expiry_action="capture",
        )
    with pytest.raises(InvalidRequest):
        await ledger.open_account("X", name="x", currency="CNY")


async def test_concurrent_holds_never_overdraw(ledger: Ledger) -> None:
    # 13,700.00 and 500 concurrent holds of 100.00: exactly 137 approved.
    await open_customer(ledger, balance=1_370_000)
    statuses = await concurrent_withdraw_statuses(ledger, 500, 10_000)
    assert statuses.count("approved") == 137
    assert statuses.count("insufficient_funds") == 363
    assert await ledger.balance("ACC1") == Balance(1_370_000, 0, 1_370_000, 0)
