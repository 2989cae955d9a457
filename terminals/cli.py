"""``atm-sim``: the ATM simulator's command line.

    atm-sim run SCENARIO [--host H --port P] [--data-dir D] [--json]   scripted sessions
    atm-sim run --all [--junit FILE.xml] [--without chip]             the whole catalogue
    atm-sim catalogue-fixture                                          the catalogue's fixture
    atm-sim interactive --card TRACK2 [--host H --port P] [--tmk HEX]  screen + keypad here
    atm-sim balance [--data-dir D] [--json]                            balancing report
    atm-sim export-ej --date YYYY-MM-DD [--data-dir D] [--out FILE]    one day's journal
    atm-sim scenarios                                                  bundled scenario names

The switch must be running (``atm-switch serve``) with the terminal and cards loaded
(``atm-switch fixtures load``); ``atm-switch demo`` does all of it in one command.
Errors print one line on stderr and exit non-zero; a scenario whose ``[expect]`` table is not
met exits 1 (the mismatches on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

# The terminal's storage (journal, counters, advices, STAN) when --data-dir is not given.
DEFAULT_DATA_DIR = "./atm-sim-data"
# What atm-switch checks today: chip cryptograms (spec 11). `run --all` plays the scenarios that
# require these unless told `--without`.
SWITCH_CAPABILITIES = ("chip",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atm-sim", description="ATM firmware simulator.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    run = sub.add_parser("run", help="play a scenario file (TOML) against a switch")
    run.add_argument("scenario", nargs="?",
                     help="scenario file, or the name of a bundled scenario")
    run.add_argument("--all", action="store_true",
                     help="every bundled scenario (the switch loaded with catalogue-fixture)")
    run.add_argument("--junit", metavar="FILE.xml", help="with --all: write JUnit XML here")
    run.add_argument("--only", action="append", default=[], metavar="NAME",
                     help="with --all: just these bundled scenarios (repeatable)")
    run.add_argument("--without", action="append", default=[], choices=list(SWITCH_CAPABILITIES),
                     metavar="CAPABILITY",
                     help="with --all: the switch lacks this (chip): its scenarios are skipped; "
                          "by default the switch is taken to have every capability it ships with")
    run.add_argument("--capability", action="append", default=[], choices=list(SWITCH_CAPABILITIES),
                     help=argparse.SUPPRESS)  # kept for old scripts: chip is now the default
    _host_flags(run)
    run.add_argument("--json", action="store_true", help="print the results as one JSON object")
    interactive = sub.add_parser("interactive", help="the ATM screen and keypad in this terminal")
    _host_flags(interactive)
    interactive.add_argument("--card", required=True, help="track 2 of the card: PAN=YYMM...")
    interactive.add_argument("--terminal-id", default="ATM00001")
    interactive.add_argument("--tmk", default=None, help="clear TMK (test data), 32 hex digits")
    balance = sub.add_parser("balance", help="balancing report: cassettes vs the host's view")
    balance.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    balance.add_argument("--json", action="store_true")
    export = sub.add_parser("export-ej", help="one UTC day of the electronic journal (JSON "
                            "lines) for atm-switch reports reconcile --ej")
    export.add_argument("--date", required=True, help="UTC date YYYY-MM-DD")
    export.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    export.add_argument("--out", default=None, help="file to write (default: standard output)")
    sub.add_parser("scenarios", help="list the bundled scenarios")
    sub.add_parser("catalogue-fixture",
                   help="print the fixture (JSON) the bundled scenarios are written against")
    return parser


def _host_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="switch address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="switch port (default 8583)")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                        help="the terminal's storage: journal, counters, advices, STAN "
                             f"(default {DEFAULT_DATA_DIR}; with --all one directory per "
                             "scenario under it)")


class SimError(Exception):
    """A failure the user can act on; printed as one line."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "interactive":
            return _interactive(args)
        if args.command == "balance":
            return _balance(args)
        if args.command == "export-ej":
            return _export_ej(args)
        if args.command == "catalogue-fixture":
            from terminals.scenarios.catalogue import catalogue_fixture_text

            sys.stdout.write(catalogue_fixture_text())
            return 0
        from terminals.scenarios.loader import bundled_scenarios

        print("\n".join(bundled_scenarios()))
        return 0
    except SimError as exc:
        print(f"atm-sim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    from terminals.scenarios.expect import check
    from terminals.scenarios.loader import ScenarioError, load_scenario
    from terminals.scenarios.runner import run_scenario

    if args.all:
        if args.scenario:
            raise SimError("give a scenario or --all, not both")
        return _run_all(args)
    if not args.scenario:
        raise SimError("name a scenario (atm-sim scenarios lists them) or use --all")
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        raise SimError(str(exc)) from exc
    host = args.host or scenario.host or "127.0.0.1"
    port = args.port or scenario.port or 8583
    result = _trio_run(run_scenario, scenario, host, port, Path(args.data_dir))
    verdict = check(scenario.expect, result) if scenario.expect else None
    if verdict is not None:
        result["expectations_met"] = verdict.passed
        result["mismatches"] = verdict.mismatches
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print(describe_run(result))
    if verdict is not None and not verdict.passed:
        print(f"atm-sim: scenario {scenario.name} did not meet its expectations:",
              *(f"  - {m}" for m in verdict.mismatches), sep="\n", file=sys.stderr)
        return 1
    return 0


def _run_all(args: argparse.Namespace) -> int:
    from terminals.scenarios.catalogue import describe_results, junit_xml, run_catalogue

    async def main() -> Any:
        return await run_catalogue(args.only or None, host=args.host or "127.0.0.1",
                                   port=args.port or 8583, data_dir=Path(args.data_dir),
                                   capabilities=[c for c in SWITCH_CAPABILITIES
                                                 if c not in args.without])

    from terminals.scenarios.loader import bundled_scenarios

    unknown = sorted(set(args.only) - set(bundled_scenarios()))
    if unknown:
        raise SimError(f"no bundled scenario named {', '.join(unknown)}")
    try:
        results = trio.run(main)
    except OSError as exc:
        raise SimError(f"{exc.strerror or exc}") from exc
    if args.junit:
        Path(args.junit).write_text(junit_xml(results), encoding="utf-8")
    print(describe_results(results))
    return 0 if all(r.status in ("passed", "skipped") for r in results) else 1


def _trio_run(run: Any, scenario: Any, host: str, port: int, data_dir: Path) -> Any:
    from terminals.hostlink.store_forward import StoreError
    from terminals.journal import JournalError

    async def main() -> Any:
        return await run(scenario, host=host, port=port, data_dir=data_dir)

    try:
        return trio.run(main)
    except (StoreError, JournalError) as exc:
        raise SimError(f"terminal storage in {data_dir}: {exc}") from exc
    except OSError as exc:
        raise SimError(f"{exc.strerror or exc}") from exc


def describe_run(result: dict[str, Any]) -> str:
    from terminals.scenarios.describe import transaction_line

    lines = [f"scenario {result['scenario']} at terminal {result['terminal_id']}"]
    for number, session in enumerate(result["sessions"], start=1):
        lines.append(f"customer {number} ({session['language']}) card {session['card']}")
        lines += [transaction_line(item) for item in session["transactions"]]
        lines.append(f"  card {session['card_outcome']}")
    lines.append(f"advices pending: {result['advices_pending']}; late replies ignored: "
                 f"{result['late_replies']}; faults fired: {', '.join(result['faults_fired'])}")
    return "\n".join(lines)


def _balance(args: argparse.Namespace) -> int:
    from terminals.atm.balancing import balancing_report, describe_report
    from terminals.journal import JournalError

    data_dir = Path(args.data_dir)
    if not (data_dir / "journal.jsonl").exists():
        raise SimError(f"no journal in {data_dir} (run a scenario with --data-dir first)")
    try:
        report = balancing_report(data_dir)
    except (JournalError, ValueError) as exc:
        raise SimError(f"cannot read the terminal's records: {exc}") from exc
    if args.json:
        json.dump(report.as_dict(), sys.stdout, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print(describe_report(report))
    return 0 if report.balanced else 1


def _export_ej(args: argparse.Namespace) -> int:
    import datetime as dt

    from terminals.journal import JournalError, export_day

    try:
        day = dt.date.fromisoformat(args.date).isoformat()
    except ValueError as exc:
        raise SimError(f"--date must be a date like 2026-11-22, not {args.date!r}") from exc
    journals = journals_under(Path(args.data_dir))
    if not journals:
        raise SimError(f"no journal in {args.data_dir} nor in its scenario directories "
                       "(the --data-dir of atm-sim run, or of run --all)")
    records: list[dict[str, Any]] = []
    for journal in journals:
        try:
            records += export_day(journal, day)
        except JournalError as exc:
            raise SimError(f"cannot export the journal {journal}: {exc}") from exc
    records.sort(key=lambda record: str(record.get("at", "")))  # stable: a file's order kept
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    if args.out is None:
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


def journals_under(data_dir: Path) -> list[Path]:
    """The terminal's journal in ``data_dir``, or, for the directory of ``run --all``, the
    journals of its scenario directories (one terminal whose STAN runs across them)."""
    own = data_dir / "journal.jsonl"
    if own.exists():
        return [own]
    return sorted(data_dir.glob("*/journal.jsonl"))


def _interactive(args: argparse.Namespace) -> int:
    from terminals.scenarios.interactive import run_interactive
    from terminals.scenarios.loader import DEFAULT_TMK

    try:
        from terminals.atm.session import parse_track2

        parse_track2(args.card)
    except ValueError as exc:
        raise SimError(str(exc)) from exc
    trio.run(run_interactive, args.card, args.host or "127.0.0.1", args.port or 8583,
             Path(args.data_dir), args.terminal_id, args.tmk or DEFAULT_TMK)
    return 0


if __name__ == "__main__":
    sys.exit(main())
