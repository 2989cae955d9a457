"""The asyncio loop thread behind ``Database``: results and errors come back to Trio,
a deadline cancels the statement and leaves the pool usable, many Trio tasks share it."""

from __future__ import annotations

import asyncpg
import pytest
import trio

from switch.db.loop_thread import LoopThread
from switch.db.runtime import Database, DatabaseUnavailable


async def test_results_and_sql_errors_cross_back_to_trio(db: Database) -> None:
    assert await db.fetchval("SELECT 40 + 2") == 42
    with pytest.raises(asyncpg.UndefinedTableError):
        await db.fetch("SELECT * FROM no_such_table")


async def test_deadline_cancels_the_statement_and_the_pool_stays_usable(db: Database) -> None:
    with trio.fail_after(10):  # the test's own guard: the deadline below must fire first
        with pytest.raises(DatabaseUnavailable):
            await db.execute("SELECT pg_sleep(5)", timeout_s=0.3)
    with trio.move_on_after(0.2):
        await db.execute("SELECT pg_sleep(5)")  # cancelled by the caller's own scope
    assert await db.fetchval("SELECT 1") == 1
    running = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)'"
        " AND state = 'active'"
    )
    assert running == 0  # asyncpg cancelled them server-side


async def test_many_trio_tasks_share_the_loop(db: Database) -> None:
    results: list[int] = []

    async def one(n: int) -> None:
        results.append(int(await db.fetchval("SELECT $1::int * 2", n)))

    async with trio.open_nursery() as nursery:
        for n in range(200):
            nursery.start_soon(one, n)
    assert sorted(results) == [2 * n for n in range(200)]


async def test_stopped_thread_finishes_and_closes_its_loop() -> None:
    thread = LoopThread()

    async def answer() -> int:
        return 7

    assert await thread.call(answer()) == 7
    await thread.stop()
    assert thread.loop.is_closed()
