"""Read-only views: transactions (search, detail with the decision), reports (daily volume,
reconciliation, the audit trails), keys (check values and metadata only), today's chart data.

These read tables other modules own (``auth_messages``, ``cards``, ``terminal_keys``) and never
write them. PANs appear only as stored masked (``cards.pan_masked``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from switch.admin import audit
from switch.admin.context import AdminContext
from switch.admin.errors import ApiError
from switch.admin.operations import Call
from switch.authorization import audit as card_audit

TRANSACTION_ROWS_MAX = 500

_TRANSACTIONS = (
    "SELECT a.id, a.message_class, a.terminal_id, a.stan, a.transmission_dt, a.processing_code,"
    " a.amount_minor, a.state, a.response_code, a.created_at, a.answered_at,"
    " coalesce(a.rrn, a.response_fields->>'37') AS rrn, a.reason, a.original_stan,"
    " a.currency, c.pan_masked, a.effect"
    " FROM auth_messages a LEFT JOIN cards c ON c.card_id = a.card_id"
)


def _transaction(row: Any, *, detail: bool) -> dict[str, Any]:
    found = {
        "id": row["id"],
        "message_class": row["message_class"],
        "terminal_id": row["terminal_id"],
        "stan": row["stan"],
        "transmission_dt": row["transmission_dt"],
        "processing_code": row["processing_code"],
        "amount_minor": row["amount_minor"],
        "state": row["state"],
        "response_code": row["response_code"],
        "rrn": row["rrn"],
        # An advice's own fields: the 0420's reason (field 39) and the original's STAN (90).
        "reason": row["reason"],
        "original_stan": row["original_stan"],
        "currency": row["currency"],
        "pan": row["pan_masked"],
        "created_at": row["created_at"].isoformat(),
        "answered_at": row["answered_at"].isoformat() if row["answered_at"] else None,
    }
    if detail:
        # The decision: what the ledger did (hold, capture, ...) as the pipeline recorded it.
        found["decision"] = json.loads(row["effect"]) if row["effect"] else None
    return found


def _day_bounds(day: str) -> tuple[dt.datetime, dt.datetime]:
    try:
        start = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC)
    except ValueError as exc:
        raise ApiError("invalid_field", "date: not a calendar date") from exc
    return start, start + dt.timedelta(days=1)


async def search_transactions(ctx: AdminContext, call: Call) -> Any:
    p = call.params
    start, end = _day_bounds(p["date"]) if p.get("date") else (None, None)
    rows = await ctx.db.fetch(
        _TRANSACTIONS + " WHERE ($1::text IS NULL OR a.terminal_id = $1)"
        " AND ($2::text IS NULL OR a.stan = $2) AND ($3::text IS NULL OR"
        " coalesce(a.rrn, a.response_fields->>'37') = $3)"
        " AND ($4::text IS NULL OR c.pan_masked = $4)"
        " AND ($5::timestamptz IS NULL OR a.created_at >= $5)"
        " AND ($6::timestamptz IS NULL OR a.created_at < $6)"
        " ORDER BY a.created_at DESC LIMIT $7",
        p.get("terminal"), p.get("stan"), p.get("rrn"), p.get("pan"), start, end,
        p.get("limit") or 100,
    )
    return [_transaction(r, detail=False) for r in rows]


async def show_transaction(ctx: AdminContext, call: Call) -> Any:
    row = await ctx.db.fetchrow(_TRANSACTIONS + " WHERE a.id = $1", call.params["transaction_id"])
    if row is None:
        raise ApiError("not_found", f"no transaction {call.params['transaction_id']}")
    return _transaction(row, detail=True)


async def daily_report(ctx: AdminContext, call: Call) -> Any:
    day = call.params.get("date") or dt.datetime.now(dt.UTC).date().isoformat()
    start, end = _day_bounds(day)
    rows = await ctx.db.fetch(
        "SELECT extract(hour FROM created_at AT TIME ZONE 'UTC')::int AS hour,"
        " coalesce(response_code, 'pending') AS code, count(*) AS n,"
        " coalesce(sum(amount_minor) FILTER (WHERE response_code = '00'), 0) AS approved_minor"
        " FROM auth_messages WHERE message_class = '0200' AND created_at >= $1"
        " AND created_at < $2 GROUP BY 1, 2 ORDER BY 1, 2",
        start, end,
    )
    by_hour = [0] * 24
    by_code: dict[str, int] = {}
    approved_minor = 0
    for r in rows:
        by_hour[r["hour"]] += r["n"]
        by_code[r["code"]] = by_code.get(r["code"], 0) + r["n"]
        approved_minor += int(r["approved_minor"])  # sum(bigint) is numeric: back to int
    return {"date": day, "requests": sum(by_hour), "by_hour": by_hour,
            "by_response_code": by_code, "approved_amount_minor": approved_minor}


async def reconciliation(ctx: AdminContext, call: Call) -> Any:
    from ops.reconciliation import reconciliation_report

    day = call.params.get("date") or dt.datetime.now(dt.UTC).date().isoformat()
    start, _ = _day_bounds(day)
    report: dict[str, Any] = json.loads(json.dumps(
        await reconciliation_report(ctx.db, start.date()), default=str))
    return report


async def audit_log(ctx: AdminContext, call: Call) -> Any:
    """Both trails: the back office's (who, role, address) and the CLI/switch audit table."""
    limit = call.params.get("limit") or 100
    subject = call.params.get("subject")
    return {
        "admin": await audit.entries(ctx.db, subject=subject, actor=call.params.get("actor"),
                                     limit=limit),
        "cli": await card_audit.entries(ctx.db, subject, limit),
    }


async def keys(ctx: AdminContext, call: Call) -> Any:
    """Key check values and attributes; a key or component never leaves the HSM here."""
    found: list[dict[str, Any]] = []
    for row in await ctx.db.fetch("SELECT name, handle, created_at FROM issuer_keys ORDER BY 1"):
        info = await ctx.hsm.key_info(row["handle"])
        found.append({"owner": "issuer", "name": row["name"], "usage": info.usage,
                      "algorithm": info.algorithm, "length_bytes": info.length_bytes,
                      "kcv": info.kcv, "updated_at": row["created_at"].isoformat()})
    for row in await ctx.db.fetch(
        "SELECT terminal_id, key_type, tmk_kcv, tpk IS NOT NULL AS has_working_keys, updated_at"
        " FROM terminal_keys ORDER BY terminal_id"
    ):
        found.append({"owner": f"terminal:{row['terminal_id']}", "name": "tmk",
                      "usage": "K0", "algorithm": row["key_type"], "kcv": row["tmk_kcv"],
                      "has_working_keys": row["has_working_keys"],
                      "updated_at": row["updated_at"].isoformat()})
    return found
