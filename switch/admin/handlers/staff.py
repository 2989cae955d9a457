"""People: who am I, logout, users (security officers), approvals (dual control), custody of
key components. Login itself is in :mod:`switch.admin.api` (it has no principal yet)."""

from __future__ import annotations

from typing import Any

from switch.admin import approvals, sessions, users
from switch.admin.context import AdminContext
from switch.admin.errors import ApiError
from switch.admin.operations import Call, Changed
from switch.admin.passwords import WeakPassword


async def me(ctx: AdminContext, call: Call) -> Any:
    return {"username": call.principal.username, "role": call.principal.role}


async def list_users(ctx: AdminContext, call: Call) -> Any:
    return [user.as_dict() for user in await users.list_users(ctx.db)]


async def create_user(ctx: AdminContext, call: Call) -> Any:
    assert call.body is not None
    try:
        made = await users.create_user(ctx.db, call.body["username"], call.body["role"],
                                       call.body["password"])
    except WeakPassword as exc:
        raise ApiError("invalid_field", f"body.password: {exc}") from exc
    except users.UserError as exc:
        raise ApiError("conflict", str(exc)) from exc
    return Changed(made.as_dict(), "user.create", f"user:{made.username}", None, made.as_dict(),
                   status=201)


async def _set_disabled(ctx: AdminContext, call: Call, disabled: bool) -> Any:
    username = call.params["username"]
    if username == call.principal.username:
        raise ApiError("conflict", "nobody changes their own account state")
    before = await users.get_user(ctx.db, username)
    if before is None:
        raise ApiError("not_found", f"no user {username}")
    after = await users.set_disabled(ctx.db, username, disabled)
    assert after is not None
    if disabled:
        await sessions.revoke_user(ctx.db, username)
    action = "user.disable" if disabled else "user.enable"
    return Changed(after.as_dict(), action, f"user:{username}", before.as_dict(),
                   after.as_dict())


async def disable_user(ctx: AdminContext, call: Call) -> Any:
    return await _set_disabled(ctx, call, True)


async def enable_user(ctx: AdminContext, call: Call) -> Any:
    return await _set_disabled(ctx, call, False)


async def list_approvals(ctx: AdminContext, call: Call) -> Any:
    return await approvals.pending(ctx)


async def approve(ctx: AdminContext, call: Call) -> Any:
    return await approvals.approve(ctx, call.params["approval_id"], call.principal)


async def reject(ctx: AdminContext, call: Call) -> Any:
    rejected = await approvals.reject(ctx, call.params["approval_id"], call.principal)
    return Changed(rejected, "approval.reject", rejected["subject"], None, rejected)


async def custody_list(ctx: AdminContext, call: Call) -> Any:
    return ctx.custody.waiting_for(call.principal.username)


async def custody_collect(ctx: AdminContext, call: Call) -> Any:
    parcel = ctx.custody.collect(call.params["parcel_id"], call.principal.username)
    if parcel is None:
        raise ApiError("not_found", "no such component waiting for you")
    # The audit row records that the component was handed over, never its value.
    shown = {k: v for k, v in parcel.items() if k != "component_value"}
    return Changed(parcel, "key.component.collect", parcel["subject"], None, shown)


async def logout(ctx: AdminContext, call: Call) -> Any:
    """Audited here; the API revokes the caller's own bearer token after (it alone holds it)."""
    return Changed({"revoked": True}, "session.logout", f"user:{call.principal.username}",
                   None, None)
