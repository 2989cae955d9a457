"""Staff users (owns the ``admin_users`` table): create, look up, disable, login throttling.

Throttling is per user name and kept in the database, so it holds across restarts and across
several admin processes: after ``FAILED_LOGINS_FREE`` wrong passwords in a row the account is
locked for a time that doubles with every further failure, up to ``LOCK_S_MAX``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import trio

from switch.admin.passwords import hash_password, verify_password
from switch.admin.roles import ROLES
from switch.db.runtime import Database

USERNAME: Final = re.compile(r"^[a-z][a-z0-9_.-]{1,31}$")
FAILED_LOGINS_FREE: Final = 5  # typing mistakes; PCI DSS 8.3.4 allows up to 10
LOCK_S_FIRST: Final = 30.0
LOCK_S_MAX: Final = 30 * 60.0  # PCI DSS 8.3.4: locked at least 30 minutes at the worst


class UserError(ValueError):
    """A bad user name, role, or an existing user."""


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: str
    disabled: bool

    def as_dict(self) -> dict[str, Any]:
        return {"username": self.username, "role": self.role, "disabled": self.disabled}


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise UserError("a user name is 2-32 of a-z 0-9 _ . - starting with a letter")
    return username


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"a role is one of {', '.join(ROLES)}")
    return role


async def create_user(db: Database, username: str, role: str, password: str) -> User:
    check_username(username)
    check_role(role)
    hashed = await trio.to_thread.run_sync(hash_password, password)
    result = await db.execute(
        "INSERT INTO admin_users (username, role, password_hash) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING",
        username, role, hashed,
    )
    if not result.endswith(" 1"):
        raise UserError(f"user {username} exists")
    return User(username, role, False)


async def get_user(db: Database, username: str) -> User | None:
    row = await db.fetchrow(
        "SELECT username, role, disabled FROM admin_users WHERE username = $1", username
    )
    return None if row is None else User(row["username"], row["role"], row["disabled"])


async def list_users(db: Database) -> list[User]:
    rows = await db.fetch("SELECT username, role, disabled FROM admin_users ORDER BY username")
    return [User(r["username"], r["role"], r["disabled"]) for r in rows]


async def set_disabled(db: Database, username: str, disabled: bool) -> User | None:
    row = await db.fetchrow(
        "UPDATE admin_users SET disabled = $2, updated_at = now() WHERE username = $1"
        " RETURNING username, role, disabled",
        username, disabled,
    )
    return None if row is None else User(row["username"], row["role"], row["disabled"])


class LoginRefused(Exception):
    """Wrong name or password, disabled, or locked; ``throttled`` says which message to give."""

    def __init__(self, throttled: bool) -> None:
        super().__init__("locked" if throttled else "wrong user name or password")
        self.throttled = throttled


def lock_seconds(failures: int) -> float:
    """How long an account stays locked after ``failures`` wrong passwords in a row."""
    if failures < FAILED_LOGINS_FREE:
        return 0.0
    return min(LOCK_S_MAX, LOCK_S_FIRST * 2.0 ** (failures - FAILED_LOGINS_FREE))


async def authenticate(db: Database, username: str, password: str) -> User:
    """The user if the password is right and the account is usable; else :class:`LoginRefused`."""
    row = await db.fetchrow(
        "SELECT username, role, disabled, approval_pending, password_hash, failed_logins,"
        " locked_until > now() AS locked FROM admin_users WHERE username = $1",
        username,
    )
    if row is not None and row["locked"]:
        raise LoginRefused(throttled=True)
    stored = None if row is None else str(row["password_hash"])
    good = await trio.to_thread.run_sync(verify_password, stored, password)
    if row is None:
        raise LoginRefused(throttled=False)
    if not good:
        failures = int(row["failed_logins"]) + 1
        await db.execute(
            "UPDATE admin_users SET failed_logins = $2,"
            " locked_until = CASE WHEN $3 > 0 THEN now() + make_interval(secs => $3)"
            " ELSE locked_until END WHERE username = $1",
            username, failures, lock_seconds(failures),
        )
        raise LoginRefused(throttled=False)
    if row["disabled"] or row["approval_pending"]:  # pending: a second person approves first
        raise LoginRefused(throttled=False)
    await db.execute(
        "UPDATE admin_users SET failed_logins = 0, locked_until = NULL WHERE username = $1",
        username,
    )
    return User(row["username"], row["role"], False)

