"""Shared fixtures: a real PostgreSQL 16 (pgserver), one template database with the
schema, and a fresh database per test cloned from the template (fast: a file copy).

Never assumes a server is running; the session starts its own and deletes it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import trio
import trio.testing
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


def fresh_pg_server(prefix: str) -> Iterator[str]:
    """Start a PostgreSQL 16 server of its own in a new temporary directory (pgserver; runs as
    root too); yield its DSN; stop and delete it afterwards. For fixtures to wrap."""
    import pgserver

    root = tempfile.mkdtemp(prefix=prefix)
    server = pgserver.get_server(root, cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """A PostgreSQL 16 server for the whole session."""
    yield from fresh_pg_server("atm-switch-pg-")


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
def realtime_clock() -> trio.testing.MockClock:
    """Trio's MockClock running at real speed, for timeout tests on real I/O (PostgreSQL, TCP).

    PostgreSQL answers from another thread, so an autojumping clock would jump while a query is
    in flight and fire deadlines wrongly. This clock keeps real time (polls and ``fail_after``
    work as usual) and the test calls ``jump(seconds)`` where its point is time passing, once
    nothing is in flight: the timer under test fires at once and the test waits no real time
    for it. See docs/testing.md.
    """
    return trio.testing.MockClock(rate=1.0)


@pytest.fixture
async def db(pg_dsn: str) -> AsyncIterator[Database]:
    """An open Database on a fresh per-test database (inside a trio-asyncio loop)."""
    async with open_database(pg_dsn, pool_size_min=1, pool_size_max=8) as database:
        yield database


# --- secrets in logs (issue 11 item 5) --------------------------------------------------------
# A handler on the root logger scans every record the suite produces at INFO and above: its
# message, its string extras and its exception text (with the exception's own message), as the
# code handed them over, before any masking formatter. A PAN, track 2 or PIN block there fails
# the test that logged it. `fields` extras are exempt: every formatter masks them by design.

_PAN = re.compile(r"(?<![0-9])[1-9][0-9]{12,18}(?![0-9])")
_TRACK2 = re.compile(r"(?<![0-9])[0-9]{12,19}[=D][0-9]{4}")
_PIN_BLOCK = re.compile(
    r"(?i)(['\"]52['\"]\s*:\s*['\"]|pin_?block['\"]?\s*[:=]\s*['\"]?|\b(?:PB|NP)[0-9]{3})"
    r"[0-9A-F]{16}"
)
LEAK_PATTERNS = {"PAN": _PAN, "track 2": _TRACK2, "PIN block": _PIN_BLOCK}


def find_leaks(text: str) -> list[str]:
    """Names of the secret patterns found in ``text`` (one entry per kind)."""
    return [name for name, pattern in LEAK_PATTERNS.items() if pattern.search(text)]


class LeakScanner(logging.Handler):
    """Collects records whose raw text matches a secret pattern."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.hits: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        parts = [record.getMessage()]
        parts += [
            value for key, value in record.__dict__.items()
            if isinstance(value, str) and key not in _RECORD_ATTRIBUTES
        ]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append("".join(traceback.format_exception(record.exc_info[1])))
        text = "\n".join(parts)
        kinds = find_leaks(text)
        if kinds:
            self.hits.append(f"{record.name}: {', '.join(kinds)} in {text[:300]!r}")


_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_scanner = LeakScanner()


# The project's loggers are scanned from INFO up; third-party ones (asyncio, pgserver) stay at
# their levels (lowering those slowed the simulator's device timing in tests).
PROJECT_LOGGERS = ("atm", "switch", "ops", "ledger_adapter", "terminals", "loadtest")


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(_scanner)
    for name in PROJECT_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)


@pytest.fixture(autouse=True)
def _no_secrets_logged() -> Iterator[None]:
    """Fail a test during which a PAN, track 2 or PIN block was logged (see LeakScanner)."""
    _scanner.hits.clear()
    yield
    _drop_stale_json_handlers()
    hits, _scanner.hits[:] = list(_scanner.hits), []
    if hits:
        pytest.fail("secrets in log records:\n" + "\n".join(hits[:5]), pytrace=False)


def _drop_stale_json_handlers() -> None:
    """An in-process `serve` (configure_logging) leaves a JSON handler on the root logger
    writing to the test's captured stderr, closed once the test ends: remove it."""
    from ops.logs import JsonFormatter

    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler.formatter, JsonFormatter):
            root.removeHandler(handler)
