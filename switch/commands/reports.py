"""``atm-switch reports``: the audit log, unanswered claims and reversals of unknown originals."""

from __future__ import annotations

import argparse
from typing import Any

from switch.commands.common import add_dsn_flag, add_json_flag, print_json, run_with_database
from switch.config import Config
from switch.db.runtime import Database


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    reports = subparsers.add_parser("reports", help="operational reports", parents=[common])
    sub = reports.add_subparsers(dest="reports_command", metavar="REPORT")
    sub.required = True
    audit = sub.add_parser("audit", help="administrative actions, newest first", parents=[common])
    audit.add_argument("--subject", default=None, help="e.g. account:ACC1 or card:3")
    audit.add_argument("--limit", type=int, default=50)
    add_dsn_flag(audit)
    add_json_flag(audit)
    audit.set_defaults(handler=_audit)
    reversals = sub.add_parser("reversals", help="reversals whose original was unknown",
                               parents=[common])
    add_dsn_flag(reversals)
    add_json_flag(reversals)
    reversals.set_defaults(handler=_reversals)


def _audit(args: argparse.Namespace, config: Config) -> int:
    from switch.authorization import audit

    async def work(db: Database) -> list[dict[str, Any]]:
        return await audit.entries(db, args.subject, max(1, args.limit))

    rows = run_with_database(config, work)
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(f"{row['at']} {row['actor']} {row['action']} {row['subject']}")
    return 0


def _reversals(args: argparse.Namespace, config: Config) -> int:
    async def work(db: Database) -> list[dict[str, Any]]:
        rows = await db.fetch(
            "SELECT terminal_id, stan, transmission_dt, acquirer_id, reversal_stan, created_at"
            " FROM reversal_markers ORDER BY created_at DESC LIMIT 1000"
        )
        return [dict(row) | {"created_at": row["created_at"].isoformat()} for row in rows]

    rows = run_with_database(config, work)
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(f"{row['created_at']} terminal {row['terminal_id']} original STAN {row['stan']}"
                  f" field 7 {row['transmission_dt']} (reversal STAN {row['reversal_stan']})")
    return 0
