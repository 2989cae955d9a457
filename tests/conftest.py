"""Shared fixtures: a real PostgreSQL 16 (pgserver), one template database with the
schema, and a fresh database per test cloned from the template (fast: a file copy).

Never assumes a server is running; the session starts its own and deletes it.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import trio
from hypothesis import HealthCheck, settings

from switch.db.installation import MODE_TEST, record_mode
from switch.db.migrate import migrate
from switch.db.roles import ensure_app_role
from switch.db.runtime import Database, open_database

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.register_profile(
    "dev",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

TEMPLATE_DB = "atm_template"


def dsn_for_database(dsn: str, database: str) -> str:
    """Same server, another database name."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """A PostgreSQL 16 server for the whole session (pgserver; runs as root too)."""
    import pgserver

    root = tempfile.mkdtemp(prefix="atm-switch-pg-")
    server = pgserver.get_server(root, cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def pg_template(pg_server_dsn: str) -> str:
    """Create the template database once and apply every migration to it."""

    async def create() -> None:
        conn = await asyncpg.connect(pg_server_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
            await conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        finally:
            await conn.close()

    asyncio.run(create())
    template_dsn = dsn_for_database(pg_server_dsn, TEMPLATE_DB)

    async def apply() -> None:
        async with open_database(template_dsn, pool_size_min=1, pool_size_max=1) as db:
            await migrate(db)
            # Every per-test database is a test installation, as `db init --mode test` makes.
            await record_mode(db, MODE_TEST)
            await ensure_app_role(db)  # the role `serve` connects as, like `db init` makes

    trio.run(apply)
    return template_dsn


@pytest.fixture
def pg_dsn(pg_server_dsn: str, pg_template: str) -> Iterator[str]:
    """A fresh, migrated database for one test; dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:16]

    async def create() -> None:
        conn = await asyncpg.connect(pg_server_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(pg_server_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    try:
        yield dsn_for_database(pg_server_dsn, name)
    finally:
        asyncio.run(drop())


@pytest.fixture
async def db(pg_dsn: str) -> AsyncIterator[Database]:
    """An open Database on a fresh per-test database (inside a trio-asyncio loop)."""
    async with open_database(pg_dsn, pool_size_min=1, pool_size_max=8) as database:
        yield database
