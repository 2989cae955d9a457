"""Is this database an initialised atm-switch installation, and is it a test one (spec 9)?

``db init`` migrates the schema and records the mode once (``installation`` table,
migration 0700). Every other command checks first, so that a command run on an empty
database says "run atm-switch db init" instead of failing later with the driver's
``UndefinedTableError``; ``fixtures load`` also requires the ``test`` mode, checked
before it changes anything.
"""

from __future__ import annotations

from typing import Final

from switch.db.runtime import Database

MODE_PRODUCTION: Final = "production"
MODE_TEST: Final = "test"
MODES: Final = (MODE_PRODUCTION, MODE_TEST)
FIX_HINT: Final = "run 'atm-switch db init' (with the same --data-dir/--dsn) first"


class NotInitialised(Exception):
    """The database has no atm-switch schema (or an older one): ``db init`` fixes it."""


class WrongMode(Exception):
    """The installation's mode does not allow the command (or cannot be changed)."""


async def schema_present(db: Database) -> bool:
    """True once ``db init`` has created the migration table and the installation table."""
    value = await db.fetchval(
        "SELECT to_regclass('schema_migrations') IS NOT NULL"
        " AND to_regclass('installation') IS NOT NULL"
    )
    return bool(value)


async def require_initialised(db: Database, shipped: set[int] | None = None) -> None:
    """Raise :class:`NotInitialised` unless the schema exists (and has every ``shipped``
    migration, when given: a switch must not run on an older schema)."""
    if not await schema_present(db):
        raise NotInitialised(f"the database is not initialised: {FIX_HINT}")
    if shipped:
        rows = await db.fetch("SELECT version FROM schema_migrations")
        missing = shipped - {int(row["version"]) for row in rows}
        if missing:
            raise NotInitialised(
                f"the database schema is older than this switch (missing migrations "
                f"{sorted(missing)}): {FIX_HINT}"
            )


async def installation_mode(db: Database) -> str | None:
    """``production``, ``test``, or None when no ``db init`` recorded a mode yet."""
    if not await schema_present(db):
        return None
    value = await db.fetchval("SELECT mode FROM installation")
    return None if value is None else str(value)


async def record_mode(db: Database, requested: str | None) -> str:
    """Record the mode at the first ``db init`` (production unless ``requested``).

    A later ``db init`` keeps the recorded mode; asking for another one is refused, so
    a production installation cannot be turned into a test one from the CLI.
    """
    if requested is not None and requested not in MODES:
        raise WrongMode(f"unknown installation mode {requested!r}; use one of {MODES}")
    await db.execute(
        "INSERT INTO installation (mode) VALUES ($1) ON CONFLICT (singleton) DO NOTHING",
        requested or MODE_PRODUCTION,
    )
    mode = str(await db.fetchval("SELECT mode FROM installation"))
    if requested is not None and mode != requested:
        raise WrongMode(
            f"this is a {mode} installation; its mode cannot be changed to {requested}"
        )
    return mode


async def require_test_mode(db: Database) -> None:
    """Raise unless ``db init --mode test`` made this installation (spec 9, fixtures)."""
    await require_initialised(db)
    mode = await installation_mode(db)
    if mode != MODE_TEST:
        raise WrongMode(
            f"fixtures load works only on a test installation (this one is "
            f"{mode or 'of no recorded mode'}); create one with 'atm-switch db init --mode test'"
        )
