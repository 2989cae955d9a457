"""Every asyncio bridge (thread, uvloop-thread, trio-asyncio) and migrations, real PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest

from switch.db.bridges import BRIDGES
from switch.db.migrate import available_migrations, migrate
from switch.db.runtime import Database, DatabaseUnavailable, open_database


async def test_migrations_are_idempotent(db: Database) -> None:
    # The template already holds every migration: a second run applies nothing.
    assert await migrate(db) == []
    versions = [r["version"] for r in await db.fetch("SELECT version FROM schema_migrations")]
    assert sorted(versions) == [m.version for m in available_migrations()]


@pytest.mark.parametrize("bridge", BRIDGES)
async def test_transaction_runs_in_one_crossing(pg_dsn: str, bridge: str) -> None:
    async def insert_two(connection, terminal_a: str, terminal_b: str) -> int:  # type: ignore[no-untyped-def]
        async with connection.transaction():
            await connection.execute("INSERT INTO terminals (terminal_id) VALUES ($1)", terminal_a)
            await connection.execute("INSERT INTO terminals (terminal_id) VALUES ($1)", terminal_b)
        return int(await connection.fetchval("SELECT count(*) FROM terminals"))

    async with open_database(pg_dsn, pool_size_min=1, pool_size_max=2, bridge=bridge) as db:
        assert await db.run(insert_two, "ATM00001", "ATM00002") == 2
        # A SQL error passes through typed, and the pool stays usable afterwards.
        with pytest.raises(asyncpg.UniqueViolationError):
            await db.run(insert_two, "ATM00001", "ATM00003")
        assert await db.fetchval("SELECT count(*) FROM terminals") == 2


@pytest.mark.parametrize("bridge", BRIDGES)
async def test_call_deadline_is_a_typed_error(pg_dsn: str, bridge: str) -> None:
    async with open_database(pg_dsn, pool_size_min=1, pool_size_max=1, bridge=bridge) as db:
        with pytest.raises(DatabaseUnavailable, match="exceeded"):
            await db.execute("SELECT pg_sleep(5)", timeout_s=0.3)
        assert await db.ping()


@pytest.mark.parametrize("bridge", BRIDGES)
async def test_unreachable_server_is_a_typed_error(bridge: str) -> None:
    with pytest.raises(DatabaseUnavailable):
        async with open_database(
            "postgresql://nobody@127.0.0.1:1/none", call_timeout_s=1, bridge=bridge
        ):
            pass
