"""``atm-switch`` command line: one sub-command module per job.

Each module in ``COMMAND_MODULES`` exposes ``register(subparsers, common)``
and sets ``handler(args, config) -> int`` on its parsers. Every command takes
``--data-dir`` and ``--config``; commands touching PostgreSQL take ``--dsn``.
Errors print one clear line on stderr and exit non-zero (spec 9).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from switch.commands.common import CliError, build_config, common_parser

COMMAND_MODULES = (
    "switch.commands.db",
    "switch.commands.serve",
    "switch.commands.terminals",
    "switch.commands.keys",
    "switch.commands.fixtures",
    "switch.commands.accounts",
    "switch.commands.cards",
    "switch.commands.reports",
    "switch.commands.demo",
    "switch.commands.users",
    "switch.commands.backup",
    "switch.commands.import_export",
    "switch.admin.command",
)


def build_parser() -> argparse.ArgumentParser:
    common = common_parser()
    parser = argparse.ArgumentParser(
        prog="atm-switch",
        description="ATM switch: ISO 8583 server, software HSM and PostgreSQL ledger.",
        parents=[common],
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # that capability is not installed in this build
            raise
        module.register(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # pgserver asks platformdirs for a runtime dir; on servers without XDG_RUNTIME_DIR it
    # warns on every command although /tmp is used correctly.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = build_config(args)
        code = int(args.handler(args, config))
    except CliError as exc:
        print(f"atm-switch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
