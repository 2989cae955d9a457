"""``atm-switch db init``: create or migrate the schema and make sure an LMK exists."""

from __future__ import annotations

import argparse
from typing import Any

from switch.commands import standby
from switch.commands.common import add_dsn_flag, add_json_flag, print_json, run_with_database
from switch.config import Config
from switch.db.migrate import migrate
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
    init.set_defaults(handler=_init)
    standby.register(db_sub, common)


def _init(args: argparse.Namespace, config: Config) -> int:
    lmk_created = _ensure_lmk(config)

    async def work(db: Database) -> list[int]:
        return await migrate(db)

    applied = run_with_database(config, work)
    if args.json:
        print_json({"applied_migrations": applied, "lmk_created": lmk_created})
    else:
        print(f"schema up to date ({len(applied)} migration(s) applied)")
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
