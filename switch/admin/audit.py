"""The back office's audit trail (owns ``admin_audit``): who, role, when, from which address,
what, and the state before and after. Every operation that changes anything writes one row in
the same database transaction as the change (:func:`switch.admin.api.invoke`), so a change
whose audit row cannot be written is rolled back with it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from switch.admin.sessions import Principal
from switch.db.runtime import Database


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(dict(value), ensure_ascii=False, sort_keys=True,
                                                 default=str)


async def record(
    db: Database,
    principal: Principal,
    *,
    action: str,
    subject: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> None:
    await db.execute(
        "INSERT INTO admin_audit (actor, role, address, action, subject, before, after)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        principal.username, principal.role, principal.address, action, subject,
        _json(before), _json(after),
    )


async def entries(db: Database, *, subject: str | None, actor: str | None, limit: int
                  ) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT audit_id, at, actor, role, address, action, subject, before, after"
        " FROM admin_audit WHERE ($1::text IS NULL OR subject = $1)"
        " AND ($2::text IS NULL OR actor = $2) ORDER BY audit_id DESC LIMIT $3",
        subject, actor, limit,
    )
    return [
        {
            "id": row["audit_id"],
            "at": row["at"].isoformat(),
            "actor": row["actor"],
            "role": row["role"],
            "address": row["address"],
            "action": row["action"],
            "subject": row["subject"],
            "before": json.loads(row["before"]) if row["before"] else None,
            "after": json.loads(row["after"]) if row["after"] else None,
        }
        for row in rows
    ]
