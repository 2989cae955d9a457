"""``atm-switch users add NAME --role ROLE`` (password from stdin), ``users list``,
``users disable NAME``: the first back-office users, before anyone can log in to make more.

Only the bootstrap pair of approving accounts (card services, security officer, admin) comes
from here; later ones are dual-controlled in the back office (issue 18, docs/security.md).
Every change is audited in the same transaction."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from switch.commands.common import (
    CliError,
    add_dsn_flag,
    add_json_flag,
    print_json,
    run_with_database,
)
from switch.config import Config
from switch.db.runtime import Database


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    from switch.admin.roles import ROLES

    users = subparsers.add_parser("users", help="back-office users", parents=[common])
    sub = users.add_subparsers(dest="users_command", metavar="ACTION")
    sub.required = True
    add = sub.add_parser("add", help="create a user; the password is read from stdin",
                         parents=[common])
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add_dsn_flag(add)
    add.set_defaults(handler=_add)
    listing = sub.add_parser("list", help="users and roles", parents=[common])
    add_dsn_flag(listing)
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    for action in ("disable", "enable"):
        parser = sub.add_parser(action, help=f"{action} a user", parents=[common])
        parser.add_argument("username")
        add_dsn_flag(parser)
        parser.set_defaults(handler=_set_disabled, disabled=action == "disable")


def _read_password() -> str:
    """First line of stdin (a pipe or a prompt); never an argument, which ``ps`` would show."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\r\n")


def _add(args: argparse.Namespace, config: Config) -> int:
    from switch.admin.passwords import WeakPassword, check_new_password
    from switch.admin.users import UserError, check_username, create_user

    password = _read_password()
    try:
        check_username(args.username)
        check_new_password(password)
    except (UserError, WeakPassword) as exc:
        raise CliError(str(exc)) from exc

    async def work(db: Database) -> None:
        from switch.admin.people import APPROVING_ROLES, BOOTSTRAP_APPROVERS_MAX, usable_approvers
        from switch.authorization import audit
        from switch.db.migrate import migrate

        await migrate(db)  # the first user may come before the first 'db init'
        async with db.transaction() as tx:
            # Issue 18: the CLI makes only the bootstrap pair of approvers; every later one
            # is requested in the back office and approved by a second, independent person.
            await tx.execute("LOCK TABLE admin_users IN SHARE ROW EXCLUSIVE MODE")
            if (args.role in APPROVING_ROLES
                    and await usable_approvers(tx) >= BOOTSTRAP_APPROVERS_MAX):
                raise UserError(
                    f"creating a {args.role} needs a second person once the installation has "
                    f"its first {BOOTSTRAP_APPROVERS_MAX} approvers: request it in the back "
                    "office (POST /api/users), another security officer or admin approves")
            made = await create_user(tx, args.username, args.role, password)
            await audit.record(tx, action="user.create", subject=f"user:{made.username}",
                               before=None, after=made.as_dict())

    try:
        run_with_database(config, work)
    except UserError as exc:
        raise CliError(str(exc), exit_code=1) from exc
    print(f"user {args.username} added ({args.role})")
    return 0


def _list(args: argparse.Namespace, config: Config) -> int:
    from switch.admin.users import list_users

    async def work(db: Database) -> list[dict[str, Any]]:
        return [user.as_dict() for user in await list_users(db)]

    found = run_with_database(config, work)
    if args.json:
        print_json(found)
    else:
        for user in found:
            state = "disabled" if user["disabled"] else "active"
            print(f"{user['username']:<24} {user['role']:<17} {state}")
    return 0


def _set_disabled(args: argparse.Namespace, config: Config) -> int:
    from switch.admin.sessions import revoke_user
    from switch.admin.users import set_disabled

    async def work(db: Database) -> bool:
        from switch.authorization import audit

        async with db.transaction() as tx:  # the change and its audit row together
            changed = await set_disabled(tx, args.username, args.disabled)
            if changed is None:
                return False
            if args.disabled:
                await revoke_user(tx, args.username)
            await audit.record(tx, action="user.disable" if args.disabled else "user.enable",
                               subject=f"user:{args.username}", before=None,
                               after=changed.as_dict())
        return True

    if not run_with_database(config, work):
        raise CliError(f"no user {args.username}", exit_code=1)
    print(f"user {args.username} {'disabled' if args.disabled else 'enabled'}")
    return 0
