"""``atm-switch demo``: the whole system in one command.

Starts an embedded PostgreSQL (a temporary data directory unless ``--data-dir``), the switch on a
free port, demo accounts, a card and one ATM whose four devices are emulators on ptys, then plays
a short bilingual session (balance, withdrawal, transfer, mini statement; one customer in
English, one in Chinese) and prints what happened. ``--json`` prints one JSON object.
The demo's clear PIN and TMK are test data, loaded the way ``fixtures load`` loads them.

``--interactive`` starts the same system but hands the ATM's screen and keypad to the person at
this terminal: a menu of demo cards (stripe, and chip when the switch supports it) with their
PINs, then the real firmware, drivers and emulators. When the switch checks chip cryptograms
(:func:`switch_supports_chip`) the scripted demo also plays one chip withdrawal.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import trio

from switch.commands.common import (
    CliError,
    add_dsn_flag,
    add_json_flag,
    common_parser,
    print_json,
)
from switch.config import Config
from switch.db.embedded import EmbeddedDatabaseError, embedded_postgres
from switch.db.migrate import migrate
from switch.db.runtime import Database, DatabaseUnavailable, open_database

DEMO_ACCOUNT = "DEMO-WANG"
DEMO_PAYEE = "DEMO-SMITH"
DEMO_TMK = "0123456789ABCDEFFEDCBA9876543210"
DEMO_PAN, DEMO_LOST_PAN, DEMO_CHIP_PAN = (
    "6228480000000000017", "6228480000000000033", "6228480000000000108")
DEMO_CHIP_IMK = "00112233445566778899AABBCCDDEEFF"  # test data: the chip card's IMK-AC
DEMO_CHIP_PSN = "01"
DEMO_FIXTURE: dict[str, Any] = {
    "accounts": [
        {"id": DEMO_ACCOUNT, "name": "王小明", "currency": "156", "balance": 1_000_000},
        {"id": DEMO_PAYEE, "name": "John Smith", "currency": "156", "balance": 200_000},
    ],
    "cards": [
        {"pan": DEMO_PAN, "expiry": "3012", "account": DEMO_ACCOUNT, "pin": "1234"},
        {"pan": DEMO_LOST_PAN, "expiry": "3012", "account": DEMO_PAYEE, "pin": "1234",
         "status": "lost"},
    ],
    "terminals": [{"id": "ATM00001", "tmk": DEMO_TMK}],
}
DEMO_CHIP_CARD: dict[str, Any] = {
    "pan": DEMO_CHIP_PAN, "expiry": "3012", "account": DEMO_ACCOUNT, "pin": "1234",
    "emv": {"imk_ac": DEMO_CHIP_IMK, "psn": DEMO_CHIP_PSN}}


DEMO_DATA_DIR_HELP = ("directory for the demo's LMK and embedded PostgreSQL (default: a new "
                      "temporary directory, removed afterwards; ATM_SWITCH_DATA_DIR is ignored)")


def switch_supports_chip() -> bool:
    """True once the switch's authorization checks chip cryptograms (spec 11). The
    authorization package declares it with ``CHIP_CARDS_SUPPORTED = True``; until then a chip
    card would be approved without an ARPC and refused by its own chip, so the demo keeps to
    stripe cards."""
    authorization = importlib.import_module("switch.authorization")
    return bool(getattr(authorization, "CHIP_CARDS_SUPPORTED", False))


def demo_fixture(*, chip: bool) -> dict[str, Any]:
    cards = [*DEMO_FIXTURE["cards"], *([DEMO_CHIP_CARD] if chip else [])]
    return {**DEMO_FIXTURE, "cards": cards}


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    demo = subparsers.add_parser(
        "demo", parents=[common_parser(DEMO_DATA_DIR_HELP)],
        help="run PostgreSQL, the switch and one simulated ATM through a bilingual session")
    add_dsn_flag(demo)
    add_json_flag(demo)
    demo.add_argument("--scenario", default="demo",
                      help="scenario file or bundled name (default: demo)")
    demo.add_argument("--interactive", action="store_true",
                      help="hand the ATM's screen and keypad to you: pick a demo card, use it")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace, config: Config) -> int:
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    from terminals.scenarios.loader import ScenarioError, load_scenario

    if args.interactive:
        return _interactive(args, config)
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        raise CliError(str(exc)) from exc
    chip = switch_supports_chip()
    if chip and args.scenario == "demo":
        scenario = with_chip_withdrawal(scenario)
    started = time.monotonic()
    with _data_dir(getattr(args, "data_dir", None)) as data_dir:
        config = demo_config(config, data_dir)
        try:
            with _dsn(config) as dsn:
                result = trio.run(_run_demo, config, dsn, scenario, demo_fixture(chip=chip))
        except EmbeddedDatabaseError as exc:
            raise CliError(str(exc)) from exc
        except DatabaseUnavailable as exc:
            raise CliError(f"PostgreSQL is unavailable: {exc}") from exc
    result["elapsed_s"] = round(time.monotonic() - started, 2)
    if args.json:
        print_json(result)
    else:
        print(describe(result))
    failed = [t for t in result["transactions"] if t.get("response_code") != "00"]
    return 1 if failed else 0


def demo_config(config: Config, data_dir: Path) -> Config:
    """The switch on a free local port, no ops endpoint, data under ``data_dir``."""
    return dataclasses.replace(
        config, data_dir=data_dir,
        server=dataclasses.replace(config.server, host="127.0.0.1", port=0),
        ops=dataclasses.replace(config.ops, metrics_port=0))


@contextlib.contextmanager
def _data_dir(requested: str | None) -> Iterator[Path]:
    if requested:
        path = Path(requested)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="atm-switch-demo-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _dsn(config: Config) -> Iterator[str]:
    if config.database.dsn:
        yield config.database.dsn
        return
    with embedded_postgres(config.data_dir) as dsn:
        yield dsn


def with_chip_withdrawal(scenario: Any) -> Any:
    """The demo scenario plus one customer withdrawing with the chip card (Chinese)."""
    from terminals.scenarios.loader import ChipScript, SessionScript, TransactionScript

    chip_session = SessionScript(
        f"{DEMO_CHIP_PAN}=30122200000000", "zh", ("1234",),
        (TransactionScript("withdrawal", 20_000),), ChipScript(DEMO_CHIP_IMK, DEMO_CHIP_PSN))
    return dataclasses.replace(scenario, sessions=(*scenario.sessions, chip_session),
                               expect=None)


def demo_cards(*, chip: bool) -> list[Any]:
    """The interactive menu: every demo card with its PIN (test data)."""
    from terminals.scenarios.interactive import DemoCard
    from terminals.scenarios.loader import ChipScript

    cards = [DemoCard("Wang, CNY 10,000 (stripe)", f"{DEMO_PAN}=30121010000000", "1234"),
             DemoCard("Lost card: retained", f"{DEMO_LOST_PAN}=30121010000000", "1234")]
    if chip:
        cards.append(DemoCard("Wang, same account (chip)", f"{DEMO_CHIP_PAN}=30122200000000",
                              "1234", ChipScript(DEMO_CHIP_IMK, DEMO_CHIP_PSN)))
    return cards


def _interactive(args: argparse.Namespace, config: Config) -> int:
    """The person at this terminal is the customer; a summary is printed when they quit."""
    chip = switch_supports_chip()
    with _data_dir(getattr(args, "data_dir", None)) as data_dir:
        config = demo_config(config, data_dir)
        try:
            with _dsn(config) as dsn:
                result = trio.run(_run_interactive, config, dsn, chip)
        except EmbeddedDatabaseError as exc:
            raise CliError(str(exc)) from exc
        except DatabaseUnavailable as exc:
            raise CliError(f"PostgreSQL is unavailable: {exc}") from exc
    print(describe_interactive(result))
    return 0


async def _run_interactive(config: Config, dsn: str, chip: bool) -> dict[str, Any]:
    from terminals.scenarios.interactive import run_card_menu

    async with open_database(dsn, pool_size_min=1, pool_size_max=8) as db:
        await migrate(db)
        async with in_process_switch(config, db, demo_fixture(chip=chip)) as (app, address):
            print(f"atm-switch demo --interactive: switch at {address[0]}:{address[1]}, "
                  f"ledger {ledger_kind(app.ledger)}, ATM ATM00001 with its four devices on "
                  "ptys", flush=True)
            before = await _balance(app, DEMO_ACCOUNT)
            sessions = await run_card_menu(
                demo_cards(chip=chip), host=address[0], port=address[1],
                data_dir=config.data_dir / "atm", terminal_id="ATM00001", tmk=DEMO_TMK)
            after = await _balance(app, DEMO_ACCOUNT)
    return {"sessions": sessions, "account": {"id": DEMO_ACCOUNT, "before": before,
                                              "after": after}}


def describe_interactive(result: Mapping[str, Any]) -> str:
    from terminals.atm.screens import format_amount

    lines = [f"sessions: {len(result['sessions'])}"]
    for session in result["sessions"]:
        codes = " ".join(f"{t['type']}:{t.get('response_code') or '--'}"
                         for t in session["transactions"])
        lines.append(f"  card {session['card']} ({session.get('entry', 'stripe')}): "
                     f"{codes or 'no transaction'}; card {session['card_outcome']}")
    account = result["account"]
    lines.append(f"account {account['id']}: ledger {format_amount(account['before']['ledger'])}"
                 f" -> {format_amount(account['after']['ledger'])}")
    return "\n".join(lines)


async def _run_demo(config: Config, dsn: str, scenario: Any,
                    fixture: Mapping[str, Any]) -> dict[str, Any]:
    from terminals.scenarios.runner import run_scenario

    async with open_database(dsn, pool_size_min=1, pool_size_max=8) as db:
        await migrate(db)
        async with in_process_switch(config, db, fixture) as (app, address):
            before = await _balance(app, DEMO_ACCOUNT)
            result = await run_scenario(scenario, host=address[0], port=address[1],
                                        data_dir=config.data_dir / "atm")
            after = await _balance(app, DEMO_ACCOUNT)
            served_by = ledger_kind(app.ledger)
    for transaction in result["transactions"]:
        transaction["ledger"] = served_by
    result.update(ledger=served_by, switch=f"{address[0]}:{address[1]}",
                  account={"id": DEMO_ACCOUNT, "before": before, "after": after})
    return result


@contextlib.asynccontextmanager
async def in_process_switch(
    config: Config, db: Database, fixture: Mapping[str, Any]
) -> AsyncIterator[tuple[Any, tuple[str, int]]]:
    """Load ``fixture`` (test-mode HSM, as ``fixtures load``), then run a ``SwitchApp``."""
    from switch.app import SwitchApp
    from switch.authorization.fixtures import load_fixtures
    from switch.authorization.wiring import open_hsm_for, open_ledger
    from switch.hsm import ensure_lmk, open_hsm

    ensure_lmk(config)
    await load_fixtures(db, open_hsm_for(config, test_mode=True), open_ledger(db), fixture)
    app = SwitchApp(config, db, hsm=open_hsm(config))
    app.install_extensions()
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(app.run)
        yield app, addresses[0]
        app.request_shutdown()
        nursery.cancel_scope.cancel()


def ledger_kind(ledger: Any) -> str:
    """``postgres`` for the PostgreSQL ledger, ``memory`` for the in-memory one."""
    name = type(ledger).__name__.lower()
    return "postgres" if "postgres" in name else "memory" if "memory" in name else name


async def _balance(app: Any, account: str) -> dict[str, int]:
    value = await app.ledger.balance(account)
    return {"ledger": value.ledger, "available": value.available, "held": value.held}


def describe(result: Mapping[str, Any]) -> str:
    """The human-readable account of the demo."""
    from terminals.atm.screens import format_amount
    from terminals.scenarios.describe import transaction_line

    lines = [f"atm-switch demo: switch at {result['switch']}, ledger {result['ledger']}, "
             f"ATM {result['terminal_id']} with card reader, dispenser, printer and EPP on ptys"]
    for number, session in enumerate(result["sessions"], start=1):
        lines.append(f"customer {number} ({session['language']}), card {session['card']}:")
        lines += [transaction_line(item, session["language"])
                  for item in session["transactions"]]
        lines.append(f"  card {session['card_outcome']}")
    account = result["account"]
    lines.append(f"account {account['id']}: ledger {format_amount(account['before']['ledger'])}"
                 f" -> {format_amount(account['after']['ledger'])}")
    if result.get("receipts"):
        lines += ["last receipt:", *("  " + line for line in result["receipts"][-1].splitlines())]
    lines.append(f"journal: {result['journal']} (removed with the temporary data directory "
                 "unless --data-dir)")
    lines.append(f"finished in {result.get('elapsed_s', 0)} s")
    return "\n".join(lines)
