"""Fixtures for the security tests: an empty (never initialised) PostgreSQL database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from tests.conftest import dsn_for_database


@pytest.fixture
def empty_dsn(pg_server_dsn: str) -> Iterator[str]:
    """A database on the test server with no atm-switch schema at all."""
    name = "empty_" + uuid.uuid4().hex[:12]

    async def run(statement: str) -> None:
        conn = await asyncpg.connect(pg_server_dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield dsn_for_database(pg_server_dsn, name)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
