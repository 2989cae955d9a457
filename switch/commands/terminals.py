"""``atm-switch terminals add|enable|disable|list``: the terminal registry (spec 5.1).

A terminal must be registered and enabled to sign on. Terminal ids are field 41
(ans8): 1-8 printable ASCII characters without leading or trailing spaces (on the
wire a shorter id is padded with spaces on the right).
"""

from __future__ import annotations

import argparse
import re
from typing import Any, Final

from switch.commands.common import (
    CliError,
    add_dsn_flag,
    add_json_flag,
    print_json,
    run_with_database,
)
from switch.config import Config
from switch.db.runtime import Database
from switch.hsm import HsmError, KeyComponents, SoftwareHsm, ensure_lmk, open_hsm
from switch.hsm.custody import check_component_paths
from switch.hsm.provisioning import (
    provision_terminal_master_key,
    tmk_ceremony_json,
    tmk_ceremony_lines,
    write_tmk_components,
)

TERMINAL_ID_PATTERN: Final = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,6}[\x21-\x7e])?")
KEY_TYPES: Final = ("tdes", "aes")


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    terminals = subparsers.add_parser("terminals", help="terminal registry", parents=[common])
    actions = terminals.add_subparsers(dest="terminals_command", metavar="ACTION")
    actions.required = True

    add = actions.add_parser("add", help="register a terminal", parents=[common])
    add.add_argument("terminal_id", help="field 41 value, 1-8 characters")
    add.add_argument(
        "--key-type", choices=KEY_TYPES, default="tdes", help="terminal key type (default tdes)"
    )
    add.add_argument("--disabled", action="store_true", help="register it disabled")
    add.add_argument(
        "--component-files",
        nargs=2,
        metavar=("FILE1", "FILE2"),
        default=None,
        help="write the TMK's two clear components to two new files, one per custodian "
        "(they are never printed)",
    )
    add_dsn_flag(add)
    add_json_flag(add)
    add.set_defaults(handler=_add)

    for name, status in (("enable", "enabled"), ("disable", "disabled")):
        action = actions.add_parser(name, help=f"{name} a terminal", parents=[common])
        action.add_argument("terminal_id")
        add_dsn_flag(action)
        action.set_defaults(handler=_set_status, status=status)

    listing = actions.add_parser("list", help="list terminals", parents=[common])
    add_dsn_flag(listing)
    add_json_flag(listing)
    listing.set_defaults(handler=_list)


def valid_terminal_id(text: str) -> str:
    if not TERMINAL_ID_PATTERN.fullmatch(text):
        raise CliError(
            f"terminal id {text!r} must be 1-8 printable ASCII characters (no edge spaces)"
        )
    return text


async def add_terminal(db: Database, terminal_id: str, *, key_type: str, enabled: bool) -> bool:
    """Insert a terminal; False when the id is already registered."""
    status = "enabled" if enabled else "disabled"
    result = await db.execute(
        "INSERT INTO terminals (terminal_id, status, key_type) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING",
        terminal_id,
        status,
        key_type,
    )
    return result.endswith(" 1")


async def set_terminal_status(db: Database, terminal_id: str, status: str) -> bool:
    """Enable or disable a terminal; False when it is not registered."""
    result = await db.execute(
        "UPDATE terminals SET status = $2, updated_at = now() WHERE terminal_id = $1",
        terminal_id,
        status,
    )
    return result.endswith(" 1")


def _add(args: argparse.Namespace, config: Config) -> int:
    terminal_id = valid_terminal_id(args.terminal_id)
    enabled = not args.disabled
    try:
        paths = None if args.component_files is None else check_component_paths(
            args.component_files, 2
        )
    except HsmError as exc:
        raise CliError(str(exc)) from exc

    async def work(db: Database) -> KeyComponents | None:
        from switch.authorization import audit

        hsm = _open_hsm(config)  # after the installation check: nothing made on an empty one
        async with db.transaction() as tx:  # terminal, key and audit row together (issue 18)
            if not await add_terminal(tx, terminal_id, key_type=args.key_type,
                                      enabled=enabled):
                return None
            # Spec 7: a unique TMK per terminal, generated in the HSM, stored as an LMK handle.
            made = await provision_terminal_master_key(tx, hsm, terminal_id,
                                                       key_type=args.key_type)
            await audit.record(tx, action="terminal.add", subject=f"terminal:{terminal_id}",
                               before=None, after={"key_type": args.key_type,
                                                   "enabled": enabled, "tmk_kcv": made.kcv})
        return made

    tmk = run_with_database(config, work)
    if tmk is None:
        raise CliError(f"terminal {terminal_id} is already registered", exit_code=1)
    status = "enabled" if enabled else "disabled"
    files = write_tmk_components(terminal_id, tmk, paths)
    if args.json:
        print_json(
            {"terminal_id": terminal_id, "status": status, "key_type": args.key_type}
            | tmk_ceremony_json(tmk, files)
        )
    else:
        print(f"terminal {terminal_id} added ({args.key_type}, {status})")
        for line in tmk_ceremony_lines(terminal_id, tmk, files):
            print(line)
    return 0


def _open_hsm(config: Config) -> SoftwareHsm:
    """The HSM that generates the TMK; creates the LMK on a fresh data directory (as db init)."""
    try:
        ensure_lmk(config)
        return open_hsm(config)
    except HsmError as exc:
        raise CliError(str(exc)) from exc


def _set_status(args: argparse.Namespace, config: Config) -> int:
    terminal_id = valid_terminal_id(args.terminal_id)

    async def work(db: Database) -> str | None:
        """The status it had (None: not registered); changed, with its audit row in the same
        transaction, only when it differs."""
        from switch.authorization import audit

        async with db.transaction() as tx:
            before: str | None = await tx.fetchval(
                "SELECT status FROM terminals WHERE terminal_id = $1 FOR UPDATE", terminal_id)
            if before is not None and before != args.status:
                await set_terminal_status(tx, terminal_id, args.status)
                await audit.record(tx, action=f"terminal.{args.status}",
                                   subject=f"terminal:{terminal_id}", before={"status": before},
                                   after={"status": args.status})
        return before

    before = run_with_database(config, work)
    if before is None:
        raise CliError(f"terminal {terminal_id} is not registered", exit_code=1)
    if before == args.status:  # said as such, exit 1 like any refused change
        raise CliError(f"terminal {terminal_id} is already {args.status}: nothing changed",
                       exit_code=1)
    print(f"terminal {terminal_id} {args.status}")
    return 0


def _list(args: argparse.Namespace, config: Config) -> int:
    async def work(db: Database) -> list[dict[str, str]]:
        rows = await db.fetch(
            "SELECT terminal_id, status, key_type FROM terminals ORDER BY terminal_id"
        )
        return [
            {"terminal_id": r["terminal_id"], "status": r["status"], "key_type": r["key_type"]}
            for r in rows
        ]

    terminals = run_with_database(config, work)
    if args.json:
        print_json(terminals)
    else:
        for row in terminals:
            print(f"{row['terminal_id']:<8}  {row['status']:<8}  {row['key_type']}")
    return 0
