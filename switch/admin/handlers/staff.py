"""People: who am I, logout, users (security officers), approvals (dual control), custody of
key components. Login itself is in :mod:`switch.admin.api` (it has no principal yet)."""

from __future__ import annotations

from typing import Any

from switch.admin import approvals, people, sessions, users
from switch.admin.context import AdminContext
from switch.admin.errors import ApiError
from switch.admin.operations import Call, Changed
from switch.admin.passwords import WeakPassword
from switch.admin.sessions import Principal


async def me(ctx: AdminContext, call: Call) -> Any:
    return {"username": call.principal.username, "role": call.principal.role}


async def list_users(ctx: AdminContext, call: Call) -> Any:
    return [user.as_dict() for user in await users.list_users(ctx.db)]


async def create_user(ctx: AdminContext, call: Call) -> Any:
    """A new account; one of an approving role stays unusable until a second, independent
    security officer or admin approves it (issue 18)."""
    assert call.body is not None
    role = call.body["role"]
    try:
        made = await users.create_user(ctx.db, call.body["username"], role,
                                       call.body["password"])
    except WeakPassword as exc:
        raise ApiError("invalid_field", f"body.password: {exc}") from exc
    except users.UserError as exc:
        raise ApiError("conflict", str(exc)) from exc
    subject = f"user:{made.username}"
    if role not in people.APPROVING_ROLES:
        await people.vouch(ctx.db, made.username, call.principal.username)
        return Changed(made.as_dict(), "user.create", subject, None, made.as_dict(),
                       status=201)
    await people.mark_pending(ctx.db, made.username, call.principal.username)
    pending = await approvals.request(ctx, call.principal, "user.create", subject,
                                      {"role": role})
    shown = made.as_dict() | {"approval": pending}
    return Changed(shown, "user.create.requested", subject, None, shown, status=202)


async def _approve_account(ctx: AdminContext, approver: Principal, subject: str,
                           params: dict[str, Any]) -> Changed:
    username = subject.removeprefix("user:")
    if not await people.approve_account(ctx.db, username, params["role"], approver.username):
        raise ApiError("conflict", f"user {username} is no longer waiting with role "
                                   f"{params['role']}")
    after = await users.get_user(ctx.db, username)
    assert after is not None
    return Changed(after.as_dict(), "user.create.approved", subject, None, after.as_dict())


async def set_role(ctx: AdminContext, call: Call) -> Any:
    """Change a role; giving an approving role is dual-controlled, and whoever changes an
    account's role vouches for it (cannot be its second person afterwards)."""
    assert call.body is not None
    username, role = call.params["username"], call.body["role"]
    if username == call.principal.username:
        raise ApiError("conflict", "nobody changes their own role")
    before = await users.get_user(ctx.db, username)
    if before is None:
        raise ApiError("not_found", f"no user {username}")
    subject = f"user:{username}"
    if role in people.APPROVING_ROLES:
        await people.vouch(ctx.db, username, call.principal.username)
        pending = await approvals.request(ctx, call.principal, "user.role", subject,
                                          {"role": role, "from": before.role})
        return Changed(pending, "approval.request", subject, None, pending, status=202)
    return await _change_role(ctx, call.principal, username, role, before.as_dict())


async def _change_role(ctx: AdminContext, by: Principal, username: str, role: str,
                       before: dict[str, Any]) -> Changed:
    await people.set_role(ctx.db, username, role, by.username)
    await sessions.revoke_user(ctx.db, username)  # the old role's sessions end with it
    after = await users.get_user(ctx.db, username)
    assert after is not None
    return Changed(after.as_dict(), "user.role", f"user:{username}", before, after.as_dict())


async def _approve_role(ctx: AdminContext, approver: Principal, subject: str,
                        params: dict[str, Any]) -> Changed:
    username = subject.removeprefix("user:")
    before = await users.get_user(ctx.db, username)
    if before is None or before.role != params["from"]:
        raise ApiError("conflict", f"user {username} changed since the request; ask again")
    # The requester already vouches for the account (set_role); the approver does not.
    await ctx.db.execute("UPDATE admin_users SET role = $2, updated_at = now()"
                         " WHERE username = $1", username, params["role"])
    await sessions.revoke_user(ctx.db, username)
    after = await users.get_user(ctx.db, username)
    assert after is not None
    return Changed(after.as_dict(), "user.role", subject, before.as_dict(), after.as_dict())


approvals.register("user.create", people.PEOPLE_APPROVER_ROLES, _approve_account)
approvals.register("user.role", people.PEOPLE_APPROVER_ROLES, _approve_role)


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
