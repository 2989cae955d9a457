"""Shared pieces of the CLI: common flags, config building, running with a database."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from switch.config import Config, ConfigError, load_config
from switch.db.embedded import EmbeddedDatabaseError, database_dsn
from switch.db.installation import NotInitialised, WrongMode, require_initialised
from switch.db.runtime import Database, DatabaseUnavailable, open_database

T = TypeVar("T")


class CliError(Exception):
    """A command failed in a way the user can act on; printed without a traceback."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def common_parser() -> argparse.ArgumentParser:
    """Flags every command accepts (spec 9: ``--data-dir`` everywhere)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help="directory holding the LMK and the embedded PostgreSQL "
        "(env ATM_SWITCH_DATA_DIR, default ./atm-switch-data)",
    )
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="TOML configuration file (env ATM_SWITCH_CONFIG)",
    )
    return common


def add_dsn_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dsn",
        default=None,
        help="PostgreSQL DSN (env ATM_SWITCH_DSN); without it an embedded PostgreSQL "
        "runs in the data directory",
    )


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def build_config(args: argparse.Namespace, **extra: Any) -> Config:
    flags: dict[str, Any] = {
        "data_dir": getattr(args, "data_dir", None),
        "database.dsn": getattr(args, "dsn", None),
    }
    flags.update(getattr(args, "config_flags", lambda a: {})(args))
    flags.update(extra)
    try:
        return load_config(getattr(args, "config", None), flags=flags)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc


def run_with_database(
    config: Config, fn: Callable[[Database], Awaitable[T]], *, initialising: bool = False
) -> T:
    """Start (or connect to) PostgreSQL, open a pool under Trio, and run ``fn(db)``.

    Unless ``initialising`` (``db init``), the database must be an initialised
    installation: otherwise a clear error says to run ``db init`` (spec 9).
    """

    async def main(dsn: str) -> T:
        async with open_database(
            dsn,
            pool_size_min=1,
            pool_size_max=4,
            call_timeout_s=max(config.database.call_timeout_s, 30.0),
            bridge=config.database.bridge,
        ) as db:
            if not initialising:
                await require_initialised(db)
            return await fn(db)

    try:
        with database_dsn(config, create=initialising) as dsn:
            return trio.run(main, dsn)
    except (EmbeddedDatabaseError, NotInitialised, WrongMode) as exc:
        raise CliError(str(exc)) from exc
    except DatabaseUnavailable as exc:
        raise CliError(f"PostgreSQL is unavailable: {exc}") from exc


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, ensure_ascii=False, sort_keys=True)
    sys.stdout.write("\n")
    sys.stdout.flush()
