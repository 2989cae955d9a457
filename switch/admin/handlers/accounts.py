"""Accounts: balance, statement, freeze, unfreeze, through the ledger's own API."""

from __future__ import annotations

from typing import Any

from ledger_adapter import AccountNotFound
from switch.admin.context import AdminContext
from switch.admin.errors import ApiError, Unchanged
from switch.admin.operations import Call, Changed
from switch.authorization.wiring import open_ledger

STATEMENT_ROWS_MAX = 200


async def _account(ctx: AdminContext, account_id: str) -> dict[str, Any]:
    ledger = open_ledger(ctx.db)
    try:
        account = await ledger.get_account(account_id)
        balance = await ledger.balance(account_id)
    except AccountNotFound as exc:
        raise ApiError("not_found", f"no account {account_id}") from exc
    return {
        "account_id": account.account_id,
        "name": account.name,
        "currency": account.currency,
        "status": account.status,
        "ledger_balance": balance.ledger,
        "available_balance": balance.available,
        "held": balance.held,
        "pending_credit": balance.pending_credit,
    }


async def show(ctx: AdminContext, call: Call) -> Any:
    return await _account(ctx, call.params["account_id"])


async def statement(ctx: AdminContext, call: Call) -> Any:
    account_id = call.params["account_id"]
    await _account(ctx, account_id)
    entries = await open_ledger(ctx.db).statement(account_id,
                                                 call.params.get("limit") or 20)
    return [
        {"posted_at": e.posted_at.isoformat(), "direction": e.direction, "amount": e.amount,
         "description": e.description}
        for e in entries
    ]


async def _set_status(ctx: AdminContext, call: Call, status: str) -> Any:
    account_id = call.params["account_id"]
    before = await _account(ctx, account_id)
    if before["status"] == status:
        raise Unchanged("account", status)
    await open_ledger(ctx.db).set_account_status(account_id, status)
    after = await _account(ctx, account_id)
    return Changed(after, f"account.status.{status}", f"account:{account_id}", before, after)


async def freeze(ctx: AdminContext, call: Call) -> Any:
    return await _set_status(ctx, call, "frozen")


async def unfreeze(ctx: AdminContext, call: Call) -> Any:
    return await _set_status(ctx, call, "active")
