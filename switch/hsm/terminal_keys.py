"""The ``terminal_keys`` table (migration 0201): LMK handles of each terminal's keys.

Used by ``terminals add`` (TMK), fixtures loading (TMK from test data) and the
key exchange handler (TPK/TAK). Only handles are stored; see docs/hsm.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from switch.db.runtime import Database


@dataclass(frozen=True, slots=True)
class TerminalKeys:
    terminal_id: str
    tmk: str
    tpk: str | None
    tak: str | None
    key_type: str
    tmk_kcv: str | None


async def store_terminal_master_key(
    db: Database, terminal_id: str, *, tmk: str, key_type: str, tmk_kcv: str
) -> None:
    """Set a terminal's TMK (clears its working keys: a new TMK needs a new key exchange)."""

    async def call(connection: asyncpg.Connection) -> None:
        await connection.execute(
            "INSERT INTO terminal_keys (terminal_id, tmk, key_type, tmk_kcv, updated_at)"
            " VALUES ($1, $2, $3, $4, now())"
            " ON CONFLICT (terminal_id) DO UPDATE SET tmk = EXCLUDED.tmk,"
            " key_type = EXCLUDED.key_type, tmk_kcv = EXCLUDED.tmk_kcv,"
            " tpk = NULL, tak = NULL, updated_at = now()",
            terminal_id,
            tmk,
            key_type,
            tmk_kcv,
        )

    await db.run(call)


async def store_working_keys(db: Database, terminal_id: str, *, tpk: str, tak: str) -> bool:
    """Record the TPK/TAK of a key exchange; False when the terminal has no keys row."""

    async def call(connection: asyncpg.Connection) -> str:
        result: str = await connection.execute(
            "UPDATE terminal_keys SET tpk = $2, tak = $3, updated_at = now()"
            " WHERE terminal_id = $1",
            terminal_id,
            tpk,
            tak,
        )
        return result

    return (await db.run(call)).endswith(" 1")


async def load_terminal_keys(db: Database, terminal_id: str) -> TerminalKeys | None:
    """The terminal's key handles, or None when it has none."""
    row: Any = await db.fetchrow(
        "SELECT terminal_id, tmk, tpk, tak, key_type, tmk_kcv FROM terminal_keys"
        " WHERE terminal_id = $1",
        terminal_id,
    )
    if row is None:
        return None
    return TerminalKeys(
        row["terminal_id"], row["tmk"], row["tpk"], row["tak"], row["key_type"], row["tmk_kcv"]
    )
