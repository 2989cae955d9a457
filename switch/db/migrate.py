"""Versioned SQL migrations, applied idempotently by ``atm-switch db init``.

Migrations are ``NNNN_name.sql`` files, each in its owner's ``migrations`` package
(:data:`MIGRATION_PACKAGES`: the ledger's SQL lives in ``ledger_adapter/migrations/``, the
rest in ``switch/db/migrations/``), applied as one sequence in numeric order, each in its own
transaction, and recorded in ``schema_migrations``. An advisory lock serialises concurrent
``db init`` runs. Number ranges by owner, so parallel work never collides: 0001-0099 switch
core, 0100-0199 ledger, 0200-0299 HSM key store, 0300-0399 authorization, 0400-0499
terminals/ops, 0700-0749 hardening (installation mode, least-privilege roles).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Final

import asyncpg

from switch.db.runtime import Database

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 8583_0001


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


# Where each owner keeps its SQL (one version sequence across them all).
MIGRATION_PACKAGES: Final = ("ledger_adapter.migrations", "switch.db.migrations")


def available_migrations() -> list[Migration]:
    """All migrations shipped with the packages, in version order."""
    found: list[Migration] = []
    for package in MIGRATION_PACKAGES:
        for entry in resources.files(package).iterdir():
            match = _MIGRATION_NAME.match(entry.name)
            if match:
                found.append(
                    Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8"))
                )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


async def migrate(db: Database) -> list[int]:
    """Apply every pending migration; return the versions applied now."""
    migrations = available_migrations()

    async def apply(connection: asyncpg.Connection) -> list[int]:
        applied_now: list[int] = []
        await connection.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        try:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            rows = await connection.fetch("SELECT version FROM schema_migrations")
            done = {row["version"] for row in rows}
            for migration in migrations:
                if migration.version in done:
                    continue
                async with connection.transaction():
                    await connection.execute(migration.sql)
                    await connection.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                applied_now.append(migration.version)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
        return applied_now

    return await db.run(apply, timeout_s=120)
