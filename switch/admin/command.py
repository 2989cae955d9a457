"""``atm-switch admin``: the back office (API + console) as its own process.

A separate process keeps the admin stack (templates, argon2, a web framework) out of the
switch's hot path and lets the admin port be firewalled apart from the ATM and ops ports.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

import trio

from switch.commands.common import CliError, add_dsn_flag
from switch.config import Config

log = logging.getLogger("atm.admin")

DEFAULT_PORT = 8600


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    admin = subparsers.add_parser("admin", help="run the back office (admin API and console)",
                                  parents=[common])
    admin.add_argument("--host", default="127.0.0.1",
                       help="listen address (default 127.0.0.1: put TLS in front)")
    admin.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"listen port (default {DEFAULT_PORT})")
    admin.add_argument("--insecure-cookies", action="store_true",
                       help="console cookies without Secure (plain-HTTP testing only)")
    add_dsn_flag(admin)
    admin.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace, config: Config) -> int:
    from ops.logs import configure_logging
    from switch.admin.context import AdminContext
    from switch.admin.custody import CustodyBox
    from switch.admin.server import serve_admin
    from switch.authorization.wiring import open_hsm_for
    from switch.db.embedded import EmbeddedDatabaseError, database_dsn
    from switch.db.migrate import migrate
    from switch.db.runtime import DatabaseUnavailable, open_database
    from switch.hsm import HsmError

    # Functions shared with the CLI (card status, ...) also write the CLI audit table with
    # ATM_SWITCH_ACTOR as actor; there it names this process, the person is in admin_audit.
    os.environ.setdefault("ATM_SWITCH_ACTOR", "back-office")
    try:
        hsm = open_hsm_for(config)
    except HsmError as exc:
        raise CliError(str(exc)) from exc
    configure_logging(config.ops.log_level, config.ops.log_file)  # one JSON object a line

    async def main(dsn: str) -> None:
        async with open_database(dsn, pool_size_min=1, pool_size_max=8,
                                 call_timeout_s=config.database.call_timeout_s,
                                 bridge=config.database.bridge) as db:
            await migrate(db)  # idempotent, under an advisory lock (as serve does)
            ctx = AdminContext(db, hsm, CustodyBox(),
                               secure_cookies=not args.insecure_cookies)
            async with trio.open_nursery() as nursery:
                host, port = await nursery.start(serve_admin, ctx, args.host, args.port)
                print(f"atm-switch admin: listening on http://{host}:{port}/", flush=True)

    try:
        with database_dsn(config) as dsn:
            trio.run(main, dsn)
    except (EmbeddedDatabaseError, OSError) as exc:
        raise CliError(str(exc)) from exc
    except DatabaseUnavailable as exc:
        raise CliError(f"PostgreSQL is unavailable: {exc}") from exc
    except KeyboardInterrupt:
        return 0
    return 0
