"""``atm-switch reports daily`` and ``atm-switch reports reconcile`` (issue 12).

Thin CLI glue over ``ops.reports``: parse the date, open the database, run the report with a
progress bar on stderr (when it is a terminal), print text or JSON, write CSV/PNG/metrics files.
``reconcile`` exits 0 when the day is balanced, 1 when there are anomalies, 2 on error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

from switch.commands.common import CliError, add_dsn_flag, print_json, run_with_database
from switch.config import Config
from switch.db.runtime import Database


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    daily = sub.add_parser("daily", parents=[common],
                           help="a UTC day per terminal and transaction type, with totals")
    daily.add_argument("--date", required=True, help="UTC date YYYY-MM-DD")
    daily.add_argument("--json", action="store_true", help="print the report as JSON")
    daily.add_argument("--csv", type=Path, default=None, metavar="FILE", help="write CSV")
    daily.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                       help="write a PNG: volume by hour and the response-code mix")
    add_dsn_flag(daily)
    daily.set_defaults(handler=_daily)
    recon = sub.add_parser("reconcile", parents=[common],
                           help="three-way reconciliation: switch records, ledger, ATM journals")
    recon.add_argument("--date", required=True, help="UTC date YYYY-MM-DD")
    recon.add_argument("--ej", type=Path, action="append", default=[], metavar="FILE",
                       help="a terminal's electronic journal for the day (atm-sim export-ej); "
                            "repeat for several terminals")
    recon.add_argument("--json", action="store_true", help="print the report as JSON")
    recon.add_argument("--metrics-file", type=Path, default=None, metavar="FILE.prom",
                       help="also write the result for node_exporter's textfile collector")
    add_dsn_flag(recon)
    recon.set_defaults(handler=_reconcile)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise CliError(f"--date must be a date like 2026-11-22, not {text!r}") from exc


def _daily(args: argparse.Namespace, config: Config) -> int:
    from ops.reports.daily import daily_report, render_text, write_csv
    from ops.reports.progress import Progress

    day = _date(args.date)
    progress = Progress(24, f"daily {day}")

    async def work(db: Database) -> dict[str, Any]:
        return await daily_report(db, day, progress)

    report = run_with_database(config, work)
    progress.close()
    try:
        if args.csv is not None:
            write_csv(report, args.csv)
        if args.plot is not None:
            from ops.reports.plot import write_plot

            write_plot(report, args.plot)
    except OSError as exc:
        raise CliError(f"cannot write: {exc}") from exc
    if args.json:
        print_json(report)
    else:
        print(render_text(report))
    return 0


def _reconcile(args: argparse.Namespace, config: Config) -> int:
    from ops.reports.ej import EjError, read_journals
    from ops.reports.progress import Progress
    from ops.reports.reconcile import PASSES, metrics_text, reconcile, render_text

    day = _date(args.date)
    try:
        read = read_journals(args.ej, day)
    except EjError as exc:
        raise CliError(f"electronic journal: {exc}") from exc
    progress = Progress(PASSES, f"reconcile {day}")

    async def work(db: Database) -> dict[str, Any]:
        return await reconcile(db, day, read.transactions, progress, read.collisions)

    report = run_with_database(config, work)
    progress.close()
    if read.collisions:
        print(f"atm-switch: warning: {len(read.collisions)} (terminal, STAN) keys are claimed by "
              "different transactions in the journals given (journals of different runs?): "
              "see the ej_key_collision anomalies", file=sys.stderr)
    if args.metrics_file is not None:
        try:
            args.metrics_file.write_text(metrics_text(report, time.time()), encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot write {args.metrics_file}: {exc}") from exc
    if args.json:
        print_json(report)
    else:
        print(render_text(report))
    sys.stdout.flush()
    return 0 if report["balanced"] else 1
