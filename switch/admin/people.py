"""Who counts as a second person (issue 18).

Dual control means two people, not two accounts. An account's ``vouched_by`` lists everyone who
created it or changed its role: the creator chose its first password, the role changer chose
what it may do, so either may in effect act as it. Two accounts are *independent* when they are
different, both usable, and neither lists the other in ``vouched_by``. An approval needs the
approver independent of the requester; the two custodians of one key must be independent of
each other.

Creating an account of a role that can approve something (:data:`APPROVING_ROLES`), or giving
an account such a role, is itself dual-controlled: the account exists but cannot log in
(``approval_pending``) until a second, independent security officer or admin approves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from switch.admin.errors import ApiError
from switch.admin.roles import ADMIN, CARD_SERVICES, SECURITY_OFFICER
from switch.db.runtime import Database

# Roles that can approve a dual-control request (card reactivation, TMK, people).
APPROVING_ROLES: Final = frozenset({CARD_SERVICES, SECURITY_OFFICER, ADMIN})
# Who approves a new approving account or a role change to one.
PEOPLE_APPROVER_ROLES: Final = frozenset({SECURITY_OFFICER, ADMIN})
# The bootstrap: the CLI may create approving accounts directly until this many are usable.
BOOTSTRAP_APPROVERS_MAX: Final = 2


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    role: str
    usable: bool
    vouched_by: frozenset[str]


async def account(db: Database, username: str) -> Account | None:
    row = await db.fetchrow(
        "SELECT username, role, disabled, approval_pending, vouched_by FROM admin_users"
        " WHERE username = $1", username)
    if row is None:
        return None
    return Account(row["username"], row["role"],
                   not row["disabled"] and not row["approval_pending"],
                   frozenset(row["vouched_by"] or ()))


def why_not_independent(first: Account, second: Account) -> str | None:
    """The reason two accounts are not two people, or None when they are."""
    if first.username == second.username:
        return "the same person"
    if first.username in second.vouched_by:
        return f"{first.username} created or changed {second.username}'s account"
    if second.username in first.vouched_by:
        return f"{second.username} created or changed {first.username}'s account"
    return None


async def require_independent(db: Database, first: str, second: str, what: str) -> None:
    """Raise ``forbidden`` unless ``first`` and ``second`` are two usable, independent people."""
    accounts = [await account(db, name) for name in (first, second)]
    for name, found in zip((first, second), accounts, strict=True):
        if found is None or not found.usable:
            raise ApiError("invalid_field", f"{what}: no usable user {name}")
    one, other = accounts
    assert one is not None and other is not None
    reason = why_not_independent(one, other)
    if reason is not None:
        raise ApiError("forbidden", f"{what} must be two independent people: {reason}")


async def usable_approvers(db: Database) -> int:
    """Usable accounts of an approving role (for the CLI's bootstrap rule)."""
    return int(await db.fetchval(
        "SELECT count(*) FROM admin_users WHERE role = ANY($1::text[]) AND NOT disabled"
        " AND NOT approval_pending", sorted(APPROVING_ROLES)))


async def mark_pending(db: Database, username: str, vouched_by: str) -> None:
    """A new approving account: unusable until approved; its creator vouched for it."""
    await db.execute(
        "UPDATE admin_users SET approval_pending = true, vouched_by = array_append(vouched_by,"
        " $2), updated_at = now() WHERE username = $1", username, vouched_by)


async def vouch(db: Database, username: str, by: str) -> None:
    await db.execute(
        "UPDATE admin_users SET vouched_by = array_append(vouched_by, $2), updated_at = now()"
        " WHERE username = $1 AND NOT ($2 = ANY(vouched_by))", username, by)


async def approve_account(db: Database, username: str, role: str, approver: str) -> bool:
    """Make a pending account usable, if it still has the role that was requested."""
    result = await db.execute(
        "UPDATE admin_users SET approval_pending = false, approved_by = $3, updated_at = now()"
        " WHERE username = $1 AND role = $2 AND approval_pending", username, role, approver)
    return result.endswith(" 1")


async def set_role(db: Database, username: str, role: str, changed_by: str) -> bool:
    """Give an account a role; the changer vouches for it from now on."""
    result = await db.execute(
        "UPDATE admin_users SET role = $2, updated_at = now(),"
        " vouched_by = CASE WHEN $3 = ANY(vouched_by) THEN vouched_by"
        " ELSE array_append(vouched_by, $3) END WHERE username = $1",
        username, role, changed_by)
    return result.endswith(" 1")
