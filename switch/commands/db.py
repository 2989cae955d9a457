"""``atm-switch db init``: create or migrate the schema and make sure an LMK exists."""

from __future__ import annotations

import argparse
from typing import Any

from switch.commands import standby
from switch.commands.common import add_dsn_flag, add_json_flag, print_json, run_with_database
from switch.config import Config
from switch.db.installation import MODES, record_mode
from switch.db.migrate import migrate
from switch.db.roles import ensure_app_role
from switch.db.runtime import Database


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    db = subparsers.add_parser("db", help="database schema", parents=[common])
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION")
    db_sub.required = True
    init = db_sub.add_parser(
        "init", help="create or migrate the schema (idempotent)", parents=[common]
    )
    add_dsn_flag(init)
    add_json_flag(init)
    init.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="installation mode, recorded by the first init and never changed afterwards: "
        "'test' allows 'fixtures load' (clear PINs and keys); default production",
    )
    init.set_defaults(handler=_init)
    standby.register(db_sub, common)


def _init(args: argparse.Namespace, config: Config) -> int:
    lmk_created = _ensure_lmk(config)

    async def work(db: Database) -> tuple[list[int], str]:
        applied = await migrate(db)
        mode = await record_mode(db, args.mode)
        await ensure_app_role(db, config.database.app_role)  # what serve connects as
        return applied, mode

    applied, mode = run_with_database(config, work, initialising=True)
    if args.json:
        print_json({"applied_migrations": applied, "lmk_created": lmk_created, "mode": mode})
    else:
        print(f"schema up to date ({len(applied)} migration(s) applied); {mode} installation")
        if lmk_created:
            print(f"created LMK in {config.data_dir}")
    return 0


def _ensure_lmk(config: Config) -> bool:
    """Create the LMK in the data directory when none exists (spec 9)."""
    try:
        from switch.hsm.lmk import ensure_lmk
    except ModuleNotFoundError:
        return False
    return bool(ensure_lmk(config))
