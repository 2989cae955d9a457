"""Terminals: list with status and activity, add (TMK components to two custodians), enable,
disable, and TMK rotation under dual control. Rows change only through
:mod:`switch.commands.terminals` and :mod:`switch.hsm.provisioning`."""

from __future__ import annotations

from typing import Any

from switch.admin import approvals, people
from switch.admin.context import AdminContext
from switch.admin.errors import ApiError, Unchanged
from switch.admin.operations import Call, Changed
from switch.admin.roles import ADMIN, SECURITY_OFFICER
from switch.admin.sessions import Principal
from switch.commands.terminals import add_terminal, set_terminal_status
from switch.hsm.provisioning import provision_terminal_master_key

TERMINAL_ID_PATTERN = r"^[!-~](?:[ -~]{0,6}[!-~])?$"

_LIST = (
    "SELECT t.terminal_id, t.status, t.key_type, t.created_at, k.tmk_kcv,"
    " CASE WHEN k.tpk IS NOT NULL THEN k.updated_at END AS key_exchange_at,"
    " (SELECT max(a.created_at) FROM auth_messages a WHERE a.terminal_id = t.terminal_id"
    "  AND a.message_class IN ('0200', '0220', '0420')) AS last_seen_at"
    " FROM terminals t LEFT JOIN terminal_keys k USING (terminal_id)"
    " WHERE ($1::text IS NULL OR t.terminal_id = $1) ORDER BY t.terminal_id"
)


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


async def terminal_rows(ctx: AdminContext, terminal_id: str | None) -> list[dict[str, Any]]:
    rows = await ctx.db.fetch(_LIST, terminal_id)
    return [
        {
            "terminal_id": r["terminal_id"],
            "status": r["status"],
            "key_type": r["key_type"],
            "tmk_kcv": r["tmk_kcv"],
            "key_exchange_at": _iso(r["key_exchange_at"]),
            "last_seen_at": _iso(r["last_seen_at"]),
            # Sign-on state lives in the switch process that holds the connection; it is not
            # in the database yet (see docs/admin.md), so the back office cannot show it.
            "signed_on": None,
        }
        for r in rows
    ]


async def _one(ctx: AdminContext, terminal_id: str) -> dict[str, Any]:
    rows = await terminal_rows(ctx, terminal_id)
    if not rows:
        raise ApiError("not_found", f"terminal {terminal_id} is not registered")
    return rows[0]


async def list_terminals(ctx: AdminContext, call: Call) -> Any:
    return await terminal_rows(ctx, None)


async def _custodians(ctx: AdminContext, body: dict[str, Any]) -> tuple[str, str]:
    """The two custodians of one key: two usable, independent people (issue 18)."""
    first, second = body["custodians"]
    if first == second:
        raise ApiError("invalid_field", "body.custodians: two different people")
    await people.require_independent(ctx.db, first, second, "body.custodians")
    return first, second


async def add(ctx: AdminContext, call: Call) -> Any:
    assert call.body is not None
    terminal_id = call.body["terminal_id"]
    key_type = call.body.get("key_type", "tdes")
    custodians = await _custodians(ctx, call.body)
    if not await add_terminal(ctx.db, terminal_id, key_type=key_type,
                              enabled=call.body.get("enabled", True)):
        raise ApiError("conflict", f"terminal {terminal_id} is already registered")
    made = await provision_terminal_master_key(ctx.db, ctx.hsm, terminal_id, key_type=key_type)
    ctx.custody.deposit(f"terminal:{terminal_id}", custodians, made.components, made.kcv)
    after = await _one(ctx, terminal_id)
    return Changed(after | {"custodians": list(custodians)}, "terminal.add",
                   f"terminal:{terminal_id}", None, after, status=201)


async def _set_status(ctx: AdminContext, call: Call, status: str) -> Any:
    terminal_id = call.params["terminal_id"]
    before = await _one(ctx, terminal_id)
    if before["status"] == status:
        raise Unchanged("terminal", status)
    await set_terminal_status(ctx.db, terminal_id, status)
    after = await _one(ctx, terminal_id)
    return Changed(after, f"terminal.{status}", f"terminal:{terminal_id}", before, after)


async def enable(ctx: AdminContext, call: Call) -> Any:
    return await _set_status(ctx, call, "enabled")


async def disable(ctx: AdminContext, call: Call) -> Any:
    return await _set_status(ctx, call, "disabled")


async def request_tmk_rotation(ctx: AdminContext, call: Call) -> Any:
    """A new TMK is a key operation: requested here, carried out when a second officer approves."""
    assert call.body is not None
    terminal_id = call.params["terminal_id"]
    await _one(ctx, terminal_id)
    custodians = await _custodians(ctx, call.body)
    pending = await approvals.request(ctx, call.principal, "terminal.rotate_tmk",
                                      f"terminal:{terminal_id}",
                                      {"custodians": list(custodians)})
    return Changed(pending, "approval.request", f"terminal:{terminal_id}", None, pending,
                   status=202)


async def _rotate_tmk(ctx: AdminContext, approver: Principal, subject: str,
                      params: dict[str, Any]) -> Changed:
    terminal_id = subject.removeprefix("terminal:")
    before = await _one(ctx, terminal_id)
    made = await provision_terminal_master_key(ctx.db, ctx.hsm, terminal_id,
                                               key_type=before["key_type"])
    first, second = params["custodians"]
    ctx.custody.deposit(subject, (first, second), made.components, made.kcv)
    after = await _one(ctx, terminal_id)
    return Changed(after, "terminal.rotate_tmk", subject, before, after)


approvals.register("terminal.rotate_tmk", frozenset({SECURITY_OFFICER, ADMIN}), _rotate_tmk)
