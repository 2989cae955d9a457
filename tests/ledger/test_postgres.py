"""PostgresLedger specifics: group commit, failure isolation inside a batch, several
switch processes on one database (modelled as independent pools), spec 5.6 release by key."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
import trio

from ledger_adapter import Balance, IdempotencyConflict, LedgerError
from ledger_adapter.postgres import PostgresLedger
from switch.db.runtime import Database, open_database
from tests.ledger.conftest import CURRENCY, LATER, concurrent_withdraw_statuses, withdraw_hold


@pytest.fixture
async def second_db(pg_dsn: str) -> AsyncIterator[Database]:
    """Another pool on the same database: a second switch process."""
    async with open_database(pg_dsn, pool_size_min=1, pool_size_max=4) as database:
        yield database


async def open_rich(ledger: PostgresLedger, account_id: str = "ACC1", balance: int = 10**9) -> None:
    await ledger.open_account(account_id, name=account_id, currency=CURRENCY, balance=balance)


async def test_concurrent_calls_share_round_trips_and_a_lone_call_goes_at_once(
    db: Database,
) -> None:
    ledger = PostgresLedger(db)
    await open_rich(ledger)
    async with trio.open_nursery() as nursery:
        for n in range(300):
            nursery.start_soon(withdraw_hold, ledger, f"k{n}", "ACC1", 100)
    committer = ledger.holds
    assert committer.items_sent == 300
    assert committer.batches_sent <= 100, "300 concurrent holds should need far fewer round trips"
    before = committer.batches_sent
    with trio.fail_after(5):
        assert (await withdraw_hold(ledger, "alone", "ACC1", 100)).approved
    assert committer.batches_sent == before + 1
    assert (await ledger.balance("ACC1")).held == 301 * 100


async def test_one_transaction_per_hold_mode_is_equally_safe(db: Database) -> None:
    # 13,700.00 and 500 concurrent holds of 100.00, each in its own transaction.
    ledger = PostgresLedger(db, batching=False)
    await open_rich(ledger, balance=1_370_000)
    statuses = await concurrent_withdraw_statuses(ledger, 500, 10_000)
    assert statuses.count("approved") == 137
    assert ledger.holds.batches_sent == 500
    await ledger.check_invariants()


async def test_a_request_failing_in_sql_fails_alone(db: Database) -> None:
    ledger = PostgresLedger(db)
    await open_rich(ledger)
    outcomes: dict[str, str] = {}

    async def one(key: str, description: str) -> None:
        try:
            result = await withdraw_hold(
                ledger, key, "ACC1", 100, reference={"description": description}
            )
            outcomes[key] = result.status
        except LedgerError as exc:
            outcomes[key] = type(exc).__name__

    async with trio.open_nursery() as nursery:
        for n in range(40):
            # PostgreSQL text cannot hold NUL: this request's SQL fails inside a batch.
            nursery.start_soon(one, f"k{n}", "bad\x00" if n == 25 else "ok")
    assert outcomes.pop("k25") == "LedgerError"
    assert set(outcomes.values()) == {"approved"}
    assert (await ledger.balance("ACC1")).held == 39 * 100
    await ledger.check_invariants()


async def test_two_processes_sweeping_resolve_each_hold_once(
    db: Database, second_db: Database
) -> None:
    first, second = PostgresLedger(db), PostgresLedger(second_db)
    await open_rich(first, balance=10**9)
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    for n in range(1200):
        await first.hold(
            f"h{n}", account_id="ACC1", amount=100, direction="debit",
            expires_at=past, expiry_action="capture" if n % 2 else "release",
        )  # fmt: skip
    counts: list[int] = []

    async def sweep(ledger: PostgresLedger) -> None:
        counts.append(await ledger.sweep_expired(dt.datetime.now(dt.UTC)))

    async with trio.open_nursery() as nursery:
        for ledger in (first, second, first, second):
            nursery.start_soon(sweep, ledger)
    assert sum(counts) == 1200
    assert await first.balance("ACC1") == Balance(10**9 - 600 * 100, 10**9 - 600 * 100, 0, 0)
    entries = await db.fetchval("SELECT count(*) FROM ledger_entries WHERE kind = 'expiry'")
    assert entries == 600
    await first.check_invariants()


async def test_same_key_from_two_processes_at_once_moves_money_once(
    db: Database, second_db: Database
) -> None:
    first, second = PostgresLedger(db), PostgresLedger(second_db)
    await open_rich(first)
    results = []

    async def place(ledger: PostgresLedger, key: str) -> None:
        results.append(await withdraw_hold(ledger, key, "ACC1", 500))

    for round_ in range(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(place, first, f"dup{round_}")
            nursery.start_soon(place, second, f"dup{round_}")
    for a, b in zip(results[::2], results[1::2], strict=True):
        assert a.hold_id == b.hold_id and a.approved
    assert (await first.balance("ACC1")).held == 20 * 500
    await first.check_invariants()


async def test_caller_gone_at_its_deadline_can_undo_by_key(db: Database) -> None:
    # Spec 5.6: the hold's outcome is unknown to a caller cancelled mid-flight; releasing by
    # key leaves no effect whichever way the race went.
    ledger = PostgresLedger(db)
    await open_rich(ledger)
    for n in range(10):
        with trio.move_on_after(0):
            await withdraw_hold(ledger, f"late{n}", "ACC1", 1_000)
        assert await ledger.release_by_key(f"late{n}") in {"released", "no_hold"}
    while ledger.holds.in_flight:
        await trio.sleep(0.01)
    assert (await ledger.balance("ACC1")).held == 0
    for n in range(10):
        try:
            assert (await withdraw_hold(ledger, f"late{n}", "ACC1", 1_000)).hold_id is not None
        except IdempotencyConflict:
            pass  # the key was voided before the hold reached the database
    assert (await ledger.balance("ACC1")).held == 0
    await ledger.check_invariants()


async def test_results_survive_a_new_ledger_instance(db: Database) -> None:
    first = PostgresLedger(db)
    await open_rich(first)
    placed = await withdraw_hold(first, "k", "ACC1", 700)
    again = await withdraw_hold(PostgresLedger(db), "k", "ACC1", 700)
    assert again == placed
    assert (await first.get_hold(placed.hold_id or 0)).expires_at == LATER
