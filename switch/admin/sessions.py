"""Staff sessions (owns ``admin_sessions``): bearer tokens for the API, cookies for the console.

A token is 32 random bytes shown once; the table keeps its SHA-256 only. Sessions expire
(``SESSION_S``) and are revoked by logout or by disabling the user. A console session also
carries a CSRF token (double submit: a form field that must match the session's stored hash).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from switch.admin.users import User
from switch.db.runtime import Database

SESSION_S: Final = 8 * 3600  # a working shift; PCI DSS 8.2.8 idle re-auth is the console's job
TOKEN_BYTES: Final = 32
SESSION_KINDS: Final = ("api", "console")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user, their role, the session kind and the caller's address."""

    username: str
    role: str
    kind: str
    address: str | None
    csrf_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str
    csrf: str | None
    expires_in_s: int


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def open_session(db: Database, user: User, *, kind: str, address: str | None
                       ) -> NewSession:
    if kind not in SESSION_KINDS:
        raise ValueError(f"session kind {kind!r}")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    csrf = secrets.token_urlsafe(TOKEN_BYTES) if kind == "console" else None
    await db.execute(
        "INSERT INTO admin_sessions (token_sha256, username, kind, csrf_sha256, address,"
        " expires_at) VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
        sha256_hex(token), user.username, kind, sha256_hex(csrf) if csrf else None, address,
        float(SESSION_S),
    )
    return NewSession(token, csrf, SESSION_S)


async def resolve(db: Database, token: str, *, kind: str, address: str | None
                  ) -> Principal | None:
    """The principal of a live session of this kind, or None (unknown, expired, revoked)."""
    if not token or len(token) > 128:
        return None
    row = await db.fetchrow(
        "SELECT s.username, u.role, s.csrf_sha256 FROM admin_sessions s"
        " JOIN admin_users u USING (username)"
        " WHERE s.token_sha256 = $1 AND s.kind = $2 AND s.revoked_at IS NULL"
        " AND s.expires_at > now() AND NOT u.disabled AND NOT u.approval_pending",
        sha256_hex(token), kind,
    )
    if row is None:
        return None
    return Principal(row["username"], row["role"], kind, address, row["csrf_sha256"])


def csrf_matches(principal: Principal, submitted: str | None) -> bool:
    if principal.csrf_sha256 is None or not submitted:
        return False
    return hmac.compare_digest(principal.csrf_sha256, sha256_hex(submitted))


async def revoke(db: Database, token: str) -> None:
    await db.execute(
        "UPDATE admin_sessions SET revoked_at = now() WHERE token_sha256 = $1"
        " AND revoked_at IS NULL",
        sha256_hex(token),
    )


async def revoke_user(db: Database, username: str) -> None:
    await db.execute(
        "UPDATE admin_sessions SET revoked_at = now() WHERE username = $1 AND revoked_at IS NULL",
        username,
    )
