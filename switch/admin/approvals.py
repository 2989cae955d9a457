"""Dual control (owns ``admin_approvals``): one person requests, a different person approves.

PCI expects two people for key operations, for lifting a lost or stolen card's report and for
giving anyone the power to approve. "Different" means independent (:mod:`switch.admin.people`):
the approver's account was not created or changed by the requester, nor the other way round.
The request is
stored with its parameters (never a secret) and a deadline; ``approve`` by a second user of an
allowed role runs the operation's executor and records the outcome on the row. The database
refuses the same person on both sides (a CHECK), and ``approve`` locks the row so two
approvers cannot both execute it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from switch.admin import people
from switch.admin.errors import ApiError
from switch.admin.sessions import Principal

if TYPE_CHECKING:
    from switch.admin.context import AdminContext
    from switch.admin.operations import Changed

Executor = Callable[["AdminContext", Principal, str, dict[str, Any]], Awaitable["Changed"]]


@dataclass(frozen=True, slots=True)
class DualControlled:
    """An operation that needs a second person: who may approve it, and what runs then."""

    approver_roles: frozenset[str]
    execute: Executor


_REGISTRY: dict[str, DualControlled] = {}


def register(operation: str, approver_roles: frozenset[str], execute: Executor) -> None:
    _REGISTRY[operation] = DualControlled(approver_roles, execute)


async def request(ctx: AdminContext, principal: Principal, operation: str, subject: str,
                  params: dict[str, Any]) -> dict[str, Any]:
    if operation not in _REGISTRY:
        raise ValueError(f"{operation} is not dual-controlled")
    row = await ctx.db.fetchrow(
        "INSERT INTO admin_approvals (operation, subject, params, requested_by, expires_at)"
        " VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING *",
        operation, subject, json.dumps(params, sort_keys=True), principal.username,
        ctx.approval_window_s,
    )
    return _row(row)


def _row(row: Any) -> dict[str, Any]:
    return {
        "approval_id": row["approval_id"],
        "operation": row["operation"],
        "subject": row["subject"],
        "params": json.loads(row["params"]),
        "requested_by": row["requested_by"],
        "requested_at": row["requested_at"].isoformat(),
        "expires_at": row["expires_at"].isoformat(),
        "state": row["state"],
        "decided_by": row["decided_by"],
        "result": json.loads(row["result"]) if row["result"] else None,
    }


async def pending(ctx: AdminContext) -> list[dict[str, Any]]:
    rows = await ctx.db.fetch(
        "SELECT * FROM admin_approvals WHERE state = 'pending' AND expires_at > now()"
        " ORDER BY approval_id"
    )
    return [_row(r) for r in rows]


async def _claim(ctx: AdminContext, approval_id: int, principal: Principal) -> dict[str, Any]:
    """Mark a pending, unexpired request decided by ``principal``; refuse anything else."""
    row = await ctx.db.fetchrow("SELECT * FROM admin_approvals WHERE approval_id = $1",
                                approval_id)
    if row is None:
        raise ApiError("not_found", f"no approval request {approval_id}")
    found = _row(row)
    controlled = _REGISTRY[found["operation"]]
    if principal.role not in controlled.approver_roles:
        raise ApiError("forbidden", f"{found['operation']} needs a second person of role "
                                    f"{' or '.join(sorted(controlled.approver_roles))}")
    if found["requested_by"] == principal.username:
        raise ApiError("forbidden", "dual control: the approver must be another person")
    # Another account is not enough: not one the requester created or changed, nor one
    # that created or changed the requester's (issue 18, switch/admin/people.py).
    await people.require_independent(ctx.db, found["requested_by"], principal.username,
                                     "dual control: requester and approver")
    claimed = await ctx.db.fetchrow(
        "UPDATE admin_approvals SET state = 'failed', decided_by = $2, decided_at = now()"
        " WHERE approval_id = $1 AND state = 'pending' AND expires_at > now() RETURNING *",
        approval_id, principal.username,
    )
    if claimed is None:
        raise ApiError("conflict", f"approval request {approval_id} is no longer pending")
    return _row(claimed)


async def approve(ctx: AdminContext, approval_id: int, principal: Principal) -> Changed:
    claimed = await _claim(ctx, approval_id, principal)
    controlled = _REGISTRY[claimed["operation"]]
    # Claimed and executed in the caller's transaction (api.invoke) with the audit row: the
    # claim locks the row, so a second approver waits and then finds it decided; if the
    # executor raises, claim, change and audit roll back together.
    done = await controlled.execute(ctx, principal, claimed["subject"], claimed["params"])
    await ctx.db.execute(
        "UPDATE admin_approvals SET state = 'executed', result = $2 WHERE approval_id = $1",
        approval_id, json.dumps(done.after, sort_keys=True, default=str),
    )
    return done


async def reject(ctx: AdminContext, approval_id: int, principal: Principal) -> dict[str, Any]:
    claimed = await _claim(ctx, approval_id, principal)
    await ctx.db.execute("UPDATE admin_approvals SET state = 'rejected' WHERE approval_id = $1",
                         approval_id)
    return claimed | {"state": "rejected"}
