"""``atm-switch import accounts|cards FILE.csv [--dry-run]`` and
``atm-switch export accounts|cards FILE.csv``: bulk data in and out (:mod:`switch.admin.csv_io`).

Import reports every bad line and changes nothing unless the whole file is valid; ``--dry-run``
stops after the report. Export masks PANs. Exit status 1 when a file has errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
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

KINDS = ("accounts", "cards")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    importing = subparsers.add_parser("import", help="import accounts or cards from CSV",
                                      parents=[common])
    importing.add_argument("kind", choices=KINDS)
    importing.add_argument("file", type=Path)
    importing.add_argument("--dry-run", action="store_true", help="validate and report only")
    add_dsn_flag(importing)
    add_json_flag(importing)
    importing.set_defaults(handler=_import)
    exporting = subparsers.add_parser("export", help="export accounts or cards to CSV "
                                      "(PANs masked)", parents=[common])
    exporting.add_argument("kind", choices=KINDS)
    exporting.add_argument("file", type=Path, help="output file, '-' for stdout")
    add_dsn_flag(exporting)
    exporting.set_defaults(handler=_export)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc


def _import(args: argparse.Namespace, config: Config) -> int:
    from switch.admin import csv_io
    from switch.authorization.wiring import open_hsm_for
    from switch.hsm import HsmError

    text = _read(args.file)
    hsm = None
    if args.kind == "cards":
        try:
            hsm = open_hsm_for(config)
        except HsmError as exc:
            raise CliError(str(exc)) from exc

    async def work(db: Database) -> tuple[list[csv_io.LineError], int]:
        if args.kind == "accounts":
            checked = csv_io.check_accounts(text)
            if not checked.errors:
                await csv_io.check_accounts_against(db, checked)
        else:
            checked = csv_io.check_cards(text, test_mode=config.hsm.test_mode)
            if not checked.errors:
                await csv_io.check_cards_against(db, checked)
        if checked.errors or args.dry_run:
            return checked.errors, 0
        if args.kind == "accounts":
            return [], await csv_io.apply_accounts(db, checked.rows)
        assert hsm is not None
        return [], await csv_io.apply_cards(db, hsm, checked.rows)

    errors, applied = run_with_database(config, work)
    if args.json:
        print_json({"errors": csv_io.summary(errors), "applied": applied,
                    "dry_run": args.dry_run})
    else:
        for error in errors:
            print(f"{args.file}: {error}", file=sys.stderr)
        if not errors:
            verb = "would import (dry run)" if args.dry_run else "imported"
            print(f"{args.kind}: {verb} {applied if not args.dry_run else 'all'} rows")
    return 1 if errors else 0


def _export(args: argparse.Namespace, config: Config) -> int:
    from switch.admin import csv_io

    async def work(db: Database) -> str:
        if args.kind == "accounts":
            return await csv_io.export_accounts(db)
        return await csv_io.export_cards(db)

    text = run_with_database(config, work)
    if str(args.file) == "-":
        sys.stdout.write(text)
    else:
        args.file.write_text(text, encoding="utf-8")
    return 0
