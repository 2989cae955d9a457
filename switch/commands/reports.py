"""``atm-switch reports``: the audit log, reversals of unknown originals, daily reconciliation;
``daily`` and ``reconcile`` (issue 12) live in ``switch/commands/ops_reports.py``."""

from __future__ import annotations

import argparse
import datetime as dt
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
    recon = sub.add_parser(
        "reconciliation",
        help="a UTC day's ledger totals and the holds and entries that need a person",
        parents=[common],
    )
    recon.add_argument("--day", default=None, help="UTC date YYYY-MM-DD (default: today)")
    add_dsn_flag(recon)
    add_json_flag(recon)
    recon.set_defaults(handler=_reconciliation)
    from switch.commands import ops_reports

    ops_reports.register(sub, common)


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


def _reconciliation(args: argparse.Namespace, config: Config) -> int:
    from ops.reconciliation import reconciliation_report, render_text

    try:
        day = dt.date.fromisoformat(args.day) if args.day else dt.datetime.now(dt.UTC).date()
    except ValueError as exc:
        raise CliError(f"--day must be a date like 2026-11-22, not {args.day!r}") from exc

    async def work(db: Database) -> dict[str, Any]:
        return await reconciliation_report(db, day)

    report = run_with_database(config, work)
    if args.json:
        print_json(report)
    else:
        print(render_text(report))
    return 1 if report["invariant_violations"] else 0
