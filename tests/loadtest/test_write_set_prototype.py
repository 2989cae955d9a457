"""The minimal-write-set prototype runs on a real PostgreSQL and its ledger adds up.

Its figures are not asserted (benchmarks measure speed); what can fail is the prototype itself:
a withdrawal not approved, a 0220 that did not post its 0200, a hold left, or balances that
differ from what was dispensed all raise ``PrototypeLedgerWrong``.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from loadtest import write_set_prototype as prototype
from tests.conftest import dsn_for_database


def test_prototype_measures_each_size_and_balances(
    pg_server_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = _empty_database(pg_server_dsn, "write_set_prototype_test")
    assert prototype.main(["--dsn", dsn, "--sizes", "1", "4", "--items", "8", "--cards", "8",
                           "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(row["batch_size"], row["messages"]) for row in report["sizes"]] == [(1, 8), (4, 8)]


def test_prototype_ledger_check_catches_an_undebited_withdrawal(pg_server_dsn: str) -> None:
    dsn = _empty_database(pg_server_dsn, "write_set_prototype_broken")

    async def run() -> None:
        await prototype.benchmark(dsn, [1], 2, 2)  # a correct run leaves a consistent ledger
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute("UPDATE p_accounts SET balance = balance + 1"
                                     " WHERE account_id = 'A1'")
            with pytest.raises(prototype.PrototypeLedgerWrong):
                await prototype.check_ledger(connection, 2, 64 + 2)
        finally:
            await connection.close()

    asyncio.run(run())


def _empty_database(server_dsn: str, name: str) -> str:
    async def create() -> None:
        connection = await asyncpg.connect(server_dsn)
        try:
            await connection.execute(f"DROP DATABASE IF EXISTS {name}")
            await connection.execute(f"CREATE DATABASE {name}")
        finally:
            await connection.close()

    asyncio.run(create())
    return dsn_for_database(server_dsn, name)
