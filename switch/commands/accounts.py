"""``atm-switch accounts``: show (spec 9), open, freeze, unfreeze, close. Changes are audited."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
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

STATUS_ACTIONS = {"freeze": "frozen", "unfreeze": "active", "close": "closed"}


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    accounts = subparsers.add_parser("accounts", help="customer accounts", parents=[common])
    sub = accounts.add_subparsers(dest="accounts_command", metavar="ACTION")
    sub.required = True
    show = sub.add_parser("show", help="balances of one account", parents=[common])
    show.add_argument("account_id")
    add_dsn_flag(show)
    add_json_flag(show)
    show.set_defaults(handler=_show)
    opening = sub.add_parser("open", help="open an account", parents=[common])
    opening.add_argument("account_id")
    opening.add_argument("--name", required=True)
    opening.add_argument("--currency", default="156", help="ISO 4217 numeric (default 156)")
    opening.add_argument("--balance", type=int, default=0, help="opening balance, minor units")
    add_dsn_flag(opening)
    add_json_flag(opening)
    opening.set_defaults(handler=_open)
    for action in STATUS_ACTIONS:
        parser = sub.add_parser(action, help=f"{action} an account", parents=[common])
        parser.add_argument("account_id")
        add_dsn_flag(parser)
        add_json_flag(parser)
        parser.set_defaults(handler=_set_status, status=STATUS_ACTIONS[action])


def _run(config: Config, fn: Callable[[Any, Database], Awaitable[dict[str, Any]]]
         ) -> dict[str, Any]:
    from ledger_adapter import AccountConflict, AccountNotFound, InvalidRequest
    from switch.authorization.wiring import open_ledger

    async def work(db: Database) -> dict[str, Any]:
        # The change and its audit row commit together or not at all (issue 18).
        async with db.transaction() as tx:
            return await fn(open_ledger(tx), tx)

    try:
        return run_with_database(config, work)
    except AccountNotFound as exc:
        raise CliError(f"no such account: {exc.account_id}", exit_code=1) from exc
    except (AccountConflict, InvalidRequest) as exc:
        raise CliError(str(exc)) from exc


def _show(args: argparse.Namespace, config: Config) -> int:
    async def work(ledger: Any, db: Database) -> dict[str, Any]:
        account = await ledger.get_account(args.account_id)
        balance = await ledger.balance(args.account_id)
        return {
            "id": account.account_id,
            "currency": account.currency,
            "ledger_balance": balance.ledger,
            "available_balance": balance.available,
            "held": balance.held,
            "_name": account.name,
            "_status": account.status,
            "_pending_credit": balance.pending_credit,
        }

    shown = _run(config, work)
    if args.json:
        print_json({key: value for key, value in shown.items() if not key.startswith("_")})
    else:
        print(f"account {shown['id']} ({shown['_name']}, {shown['_status']}, currency "
              f"{shown['currency']}): ledger {shown['ledger_balance']}, available "
              f"{shown['available_balance']}, held {shown['held']}, pending credit "
              f"{shown['_pending_credit']} (minor units)")
    return 0


def _account_dict(account: Any) -> dict[str, Any]:
    return {"id": account.account_id, "name": account.name, "currency": account.currency,
            "status": account.status}


def _open(args: argparse.Namespace, config: Config) -> int:
    from switch.authorization import audit

    if args.balance < 0:
        raise CliError("--balance must not be negative")

    async def work(ledger: Any, db: Database) -> dict[str, Any]:
        account = await ledger.open_account(args.account_id, name=args.name,
                                            currency=args.currency, balance=args.balance)
        after = _account_dict(account) | {"opening_balance": args.balance}
        await audit.record(db, action="account.open", subject=f"account:{args.account_id}",
                           before=None, after=after)
        return after

    opened = _run(config, work)
    if args.json:
        print_json(opened)
    else:
        print(f"account {opened['id']} open")
    return 0


def _set_status(args: argparse.Namespace, config: Config) -> int:
    from switch.authorization import audit

    async def work(ledger: Any, db: Database) -> dict[str, Any]:
        before = _account_dict(await ledger.get_account(args.account_id))
        if before["status"] == args.status:  # nothing to change, nothing to audit
            raise CliError(f"account {args.account_id} is already {args.status}: nothing "
                           "changed", exit_code=1)
        after = _account_dict(await ledger.set_account_status(args.account_id, args.status))
        await audit.record(db, action=f"account.status.{args.status}",
                           subject=f"account:{args.account_id}", before=before, after=after)
        return after

    changed = _run(config, work)
    if args.json:
        print_json(changed)
    else:
        print(f"account {changed['id']} is {changed['status']}")
    return 0
