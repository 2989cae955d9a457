"""Fixtures of the ledger tests: one ``ledger`` fixture parametrized over both implementations
(in memory; PostgreSQL on a fresh migrated database), and helpers shared by the test files."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
import trio

from ledger_adapter import HoldResult, InMemoryLedger, Ledger
from ledger_adapter.postgres import PostgresLedger
from switch.db.runtime import open_database

CURRENCY = "156"
LATER = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
TODAY = dt.date(2030, 6, 1)


@pytest.fixture(params=["memory", "postgres"])
def ledger_dsn(request: pytest.FixtureRequest) -> str | None:
    """None for the in-memory ledger; a fresh database's DSN for PostgreSQL."""
    if request.param == "memory":
        return None
    return str(request.getfixturevalue("pg_dsn"))


@pytest.fixture
async def ledger(ledger_dsn: str | None) -> AsyncIterator[Ledger]:
    """A ledger of either implementation; its invariants must hold after every test."""
    if ledger_dsn is None:
        memory = InMemoryLedger()
        yield memory
        await memory.check_invariants()
        return
    async with open_database(ledger_dsn, pool_size_min=1, pool_size_max=8) as db:
        postgres = PostgresLedger(db)
        yield postgres
        await postgres.check_invariants()


async def withdraw_hold(
    ledger: Ledger, key: str, account_id: str, amount: int, **kwargs: object
) -> HoldResult:
    """A debit hold expiring far in the future (withdrawal), captured on expiry."""
    return await ledger.hold(
        key,
        account_id=account_id,
        amount=amount,
        direction="debit",
        expires_at=LATER,
        expiry_action="capture",
        **kwargs,  # type: ignore[arg-type]
    )


async def open_customer(ledger: Ledger, account_id: str = "ACC1", balance: int = 100_000) -> None:
    """A customer account in CURRENCY with an opening balance (minor units)."""
    await ledger.open_account(account_id, name="Wang Wei 王伟", currency=CURRENCY, balance=balance)


async def concurrent_withdraw_statuses(
    ledger: Ledger, holds: int, amount: int, account_id: str = "ACC1"
) -> list[str]:
    """The statuses of ``holds`` withdrawal holds of ``amount`` placed all at once (keys c0..)."""
    statuses: list[str] = []

    async def one(n: int) -> None:
        statuses.append((await withdraw_hold(ledger, f"c{n}", account_id, amount)).status)

    async with trio.open_nursery() as nursery:
        for n in range(holds):
            nursery.start_soon(one, n)
    return statuses
