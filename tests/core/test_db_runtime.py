"""The trio-asyncio bridge and migrations against a real PostgreSQL."""

from __future__ import annotations

import pytest

from switch.db.migrate import available_migrations, migrate
from switch.db.runtime import Database, DatabaseUnavailable, open_database


async def test_migrations_are_idempotent(db: Database) -> None:
    # The template already holds every migration: a second run applies nothing.
    assert await migrate(db) == []
    versions = [r["version"] for r in await db.fetch("SELECT version FROM schema_migrations")]
    assert sorted(versions) == [m.version for m in available_migrations()]


async def test_transaction_runs_in_one_crossing(db: Database) -> None:
    async def insert_two(connection, terminal_a: str, terminal_b: str) -> int:  # type: ignore[no-untyped-def]
        async with connection.transaction():
            await connection.execute("INSERT INTO terminals (terminal_id) VALUES ($1)", terminal_a)
            await connection.execute("INSERT INTO terminals (terminal_id) VALUES ($1)", terminal_b)
        return int(await connection.fetchval("SELECT count(*) FROM terminals"))

    assert await db.run(insert_two, "ATM00001", "ATM00002") == 2


async def test_unreachable_server_is_a_typed_error() -> None:
    with pytest.raises(DatabaseUnavailable):
        async with open_database("postgresql://nobody@127.0.0.1:1/none", call_timeout_s=1):
            pass
