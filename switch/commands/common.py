"""Shared pieces of the CLI: common flags, config building, running with a database."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
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


DATA_DIR_HELP = ("directory holding the LMK and the embedded PostgreSQL "
                 "(env ATM_SWITCH_DATA_DIR, default ./atm-switch-data)")


def common_parser(data_dir_help: str = DATA_DIR_HELP) -> argparse.ArgumentParser:
    """Flags every command accepts (spec 9: ``--data-dir`` everywhere); a command whose default
    differs (the demo's temporary directory) says so in ``data_dir_help``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help=data_dir_help)
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
        help="PostgreSQL DSN without a password (env ATM_SWITCH_DSN); without it an embedded "
        "PostgreSQL runs in the data directory",
    )
    parser.add_argument(
        "--dsn-file",
        default=None,
        help="read the DSN from this file (or '-' for standard input): the way to give one "
        "with a password, which ps and shell history would otherwise keep",
    )


def add_pan_input(parser: argparse.ArgumentParser) -> None:
    """PANs are read from standard input or a file, never taken on the command line."""
    parser.add_argument(
        "--pan-file",
        default="-",
        help="file holding the card number on its first line (default '-': standard input)",
    )


def read_pan(args: argparse.Namespace) -> str:
    """The PAN from ``--pan-file`` (or standard input), checked to be 12-19 digits."""
    text = _read_secret_input(args.pan_file, "card number")
    if not (text.isdigit() and text.isascii() and 12 <= len(text) <= 19):
        raise CliError("the card number must be 12-19 digits (read from --pan-file or stdin)")
    return text


def _read_secret_input(source: str, what: str) -> str:
    try:
        raw = sys.stdin.readline() if source == "-" else Path(source).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the {what} from {source}: {exc}") from exc
    lines = raw.strip().splitlines()
    if not lines:
        where = "standard input" if source == "-" else source
        raise CliError(f"no {what} on {where}")
    return lines[0].strip()


def command_line_dsn(args: argparse.Namespace) -> str | None:
    """``--dsn`` (refused when it carries a password) or the DSN read from ``--dsn-file``."""
    dsn: str | None = getattr(args, "dsn", None)
    dsn_file: str | None = getattr(args, "dsn_file", None)
    if dsn and dsn_file:
        raise CliError("give --dsn or --dsn-file, not both")
    if dsn:
        try:
            password = urlsplit(dsn).password
        except ValueError:
            password = None
        if password or "password=" in dsn.lower():
            raise CliError(
                "a DSN with a password is not taken on the command line (ps and shell history "
                "keep it): use --dsn-file, ATM_SWITCH_DSN or the configuration file"
            )
        return dsn
    if dsn_file:
        return _read_secret_input(dsn_file, "DSN")
    return None


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def build_config(args: argparse.Namespace, **extra: Any) -> Config:
    flags: dict[str, Any] = {
        "data_dir": getattr(args, "data_dir", None),
        "database.dsn": command_line_dsn(args),
    }
    flags.update(getattr(args, "config_flags", lambda a: {})(args))
    flags.update(extra)
    try:
        config = load_config(getattr(args, "config", None), flags=flags)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    _withhold_lmk(config)
    return config


def _withhold_lmk(config: Config) -> None:
    """Issue 11 item 4: no child process (embedded PostgreSQL, workers) inherits the LMK."""
    try:
        from switch.hsm.lmk import withhold_from_children
    except ModuleNotFoundError:
        return
    withhold_from_children(config)


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
    except asyncpg.PostgresError as exc:
        # E.g. the audit row of a change could not be written: the change rolled back with it
        # (issue 18). Class, SQLSTATE and primary message only: DETAIL can quote row values.
        raise CliError(f"the database refused the command, nothing was changed: "
                       f"{type(exc).__name__} ({exc.sqlstate}): {exc.args[0] if exc.args else ''}"
                       ) from exc


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, ensure_ascii=False, sort_keys=True)
    sys.stdout.write("\n")
    sys.stdout.flush()
