"""``atm-switch fixtures load FILE.json``: load test data (spec 9).

Spec 9: only on a test installation (``atm-switch db init --mode test``); on any other, or
on a database or data directory that ``db init`` did not prepare, it exits non-zero with a
clear message before it changes anything (no migration, no LMK, no row). The HSM runs in
test mode for the load only (fixture files hold clear PINs and TMKs by definition; see
docs/authorization.md).
"""

from __future__ import annotations

import argparse
import json
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
from switch.db.installation import require_test_mode
from switch.db.runtime import Database


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    fixtures = subparsers.add_parser("fixtures", help="test data", parents=[common])
    sub = fixtures.add_subparsers(dest="fixtures_command", metavar="ACTION")
    sub.required = True
    load = sub.add_parser("load", help="load accounts, cards and terminals from a JSON file",
                          parents=[common])
    load.add_argument("file", help="fixture file (JSON object: accounts, cards, terminals)")
    add_dsn_flag(load)
    add_json_flag(load)
    load.set_defaults(handler=_load)


def _read(path: str) -> Any:
    try:
        with Path(path).open("rb") as handle:
            return json.load(handle)
    except FileNotFoundError as exc:
        raise CliError(f"fixture file not found: {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"fixture file {path} is not valid JSON: {exc}") from exc


def _load(args: argparse.Namespace, config: Config) -> int:
    from switch.authorization.fixtures import FixtureError, load_fixtures
    from switch.authorization.wiring import open_hsm_for, open_ledger
    from switch.hsm import HsmError, ensure_lmk

    document = _read(args.file)

    async def work(db: Database) -> dict[str, int]:
        await require_test_mode(db)  # before anything changes (spec 9)
        try:
            ensure_lmk(config)  # a test installation reached by --dsn from a new data dir
            hsm = open_hsm_for(config, test_mode=True)
        except HsmError as exc:
            raise CliError(str(exc)) from exc
        summary = await load_fixtures(db, hsm, open_ledger(db), document)
        return summary.as_dict()

    try:
        loaded = run_with_database(config, work)
    except FixtureError as exc:
        raise CliError(f"{args.file}: {exc}") from exc
    if args.json:
        print_json({"loaded": loaded})
    else:
        print(f"loaded {loaded['accounts']} account(s), {loaded['cards']} card(s), "
              f"{loaded['terminals']} terminal(s) from {args.file}")
    if not config.hsm.test_mode:
        print("note: fixture PINs and TMKs were loaded with the HSM in test mode",
              file=sys.stderr)
    return 0
