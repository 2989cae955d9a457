"""Least privilege in PostgreSQL (issue 11 item 4): the owner migrates, the switch runs as an
application role that can only read and write the rows it needs.

``db init`` connects as the owner (the DSN given, or the embedded server's superuser),
applies the migrations, then calls :func:`ensure_app_role`: a ``LOGIN`` role that is not
a superuser, cannot create roles, databases or objects, is in none of the
``pg_read_server_files`` / ``pg_write_server_files`` / ``pg_execute_server_program``
roles (so no ``pg_read_file``, ``COPY ... TO PROGRAM``), may only read the migration
and installation tables, and gets SELECT/INSERT/UPDATE/DELETE on the others plus
EXECUTE on the schema's functions. ``serve`` connects as that role (``database.app_dsn``,
or the owner's DSN with the user replaced and the password dropped: the embedded
server's Unix socket lives in a directory only its owner can enter) and refuses to
start when the role it got is privileged (:func:`require_restricted`).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from switch.db.runtime import Database

APP_ROLE_DEFAULT: Final = "atm_switch_app"
_ROLE_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Tables the application may read but never change.
READ_ONLY_TABLES: Final = ("schema_migrations", "installation")
# Built-in roles that give file or program access on the server.
PRIVILEGED_BUILTIN_ROLES: Final = (
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_read_all_data",
    "pg_write_all_data",
)


class PrivilegedRole(Exception):
    """The switch was about to run with more rights than it needs."""


def check_role_name(role: str) -> str:
    """A plain lower-case identifier (it is interpolated into DDL, so nothing else)."""
    if not _ROLE_NAME.fullmatch(role):
        raise ValueError(f"database.app_role {role!r} must match {_ROLE_NAME.pattern}")
    return role


def app_dsn(owner_dsn: str, role: str) -> str:
    """The owner's DSN with the user replaced by ``role`` and any password dropped."""
    parts = urlsplit(owner_dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("derive the application DSN only from a postgresql:// URI")
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{quote(check_role_name(role))}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def ensure_app_role(db: Database, role: str = APP_ROLE_DEFAULT) -> None:
    """Create (or re-restrict) ``role`` and grant it exactly what the switch needs."""
    role = check_role_name(role)
    database = str(await db.fetchval("SELECT current_database()"))
    statements = [
        f"""DO $$ BEGIN
              CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
                  NOBYPASSRLS NOINHERIT;
            EXCEPTION WHEN duplicate_object THEN NULL;
            END $$""",
        f"ALTER ROLE {role} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f'GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO {role}',
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {', '.join(READ_ONLY_TABLES)} FROM {role}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {role}",
    ]
    for builtin in PRIVILEGED_BUILTIN_ROLES:
        statements.append(f"REVOKE {builtin} FROM {role}")

    async def apply(connection: asyncpg.Connection) -> None:
        async with connection.transaction():
            for statement in statements:
                await connection.execute(statement)

    await db.run(apply, timeout_s=60)


async def require_restricted(db: Database) -> str:
    """Raise :class:`PrivilegedRole` unless the session's role is an unprivileged one."""
    row = await db.fetchrow(
        "SELECT current_user AS name, r.rolsuper, r.rolcreaterole, r.rolcreatedb,"
        " r.rolbypassrls, r.rolreplication,"
        " (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        "   WHERE n.nspname = 'public' AND c.relowner = r.oid) AS owned,"
        " (SELECT array_agg(b) FROM unnest($1::text[]) AS b"
        "   WHERE pg_has_role(r.oid, b, 'USAGE')) AS builtins"
        " FROM pg_roles r WHERE r.rolname = current_user",
        list(PRIVILEGED_BUILTIN_ROLES),
    )
    problems = [
        flag
        for flag in ("rolsuper", "rolcreaterole", "rolcreatedb", "rolbypassrls", "rolreplication")
        if row[flag]
    ]
    if row["owned"]:
        problems.append("owns the schema's tables")
    if row["builtins"]:
        problems.extend(row["builtins"])
    if problems:
        raise PrivilegedRole(
            f"refusing to serve as database role {row['name']!r} ({', '.join(problems)}): "
            f"run 'atm-switch db init' and let serve use the application role "
            f"(database.app_role / database.app_dsn)"
        )
    return str(row["name"])
