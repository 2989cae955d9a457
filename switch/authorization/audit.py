"""The audit table: every administrative action, who did it, when, and the state before/after."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Mapping
from typing import Any

import asyncpg

from switch.db.runtime import Database


def current_actor() -> str:
    """The operator: ``ATM_SWITCH_ACTOR`` if set, else the OS user name."""
    actor = os.environ.get("ATM_SWITCH_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(dict(value), ensure_ascii=False, sort_keys=True)


async def record(
    db: Database | asyncpg.Connection,
    *,
    action: str,
    subject: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    actor: str | None = None,
) -> None:
    await db.execute(
        "INSERT INTO audit_log (actor, action, subject, before, after) VALUES ($1, $2, $3, $4, $5)",
        actor or current_actor(),
        action,
        subject,
        _json(before),
        _json(after),
    )


async def entries(
    db: Database, subject: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT audit_id, at, actor, action, subject, before, after FROM audit_log"
        " WHERE $1::text IS NULL OR subject = $1 ORDER BY audit_id DESC LIMIT $2",
        subject,
        limit,
    )
    return [
        {
            "id": row["audit_id"],
            "at": row["at"].isoformat(),
            "actor": row["actor"],
            "action": row["action"],
            "subject": row["subject"],
            "before": json.loads(row["before"]) if row["before"] else None,
            "after": json.loads(row["after"]) if row["after"] else None,
        }
        for row in rows
    ]
