"""``atm-switch cards``: issue (PIN mailer in test mode only), lost, stolen, block, unblock,
close, reset-tries, show. Every change is audited; no command prints a PAN in clear except
the PIN mailer of ``issue`` in test mode. The PAN is read from standard input or
``--pan-file``, never taken on the command line (issue 11 item 5: ps and shell history)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from switch.commands.common import (
    CliError,
    add_dsn_flag,
    add_json_flag,
    add_pan_input,
    print_json,
    read_pan,
    run_with_database,
)
from switch.config import Config
from switch.db.runtime import Database
from switch.hsm.protocol import Hsm

if TYPE_CHECKING:
    from switch.hsm.results import PinMailer



class CardIssuingHsm(Hsm, Protocol):
    """What these commands use of the HSM: the public API plus the test-mode PIN mailer
    (``SoftwareHsm`` refuses it outside test mode; ``issue`` checks the mode first)."""

    async def issue_pin_mailer_test_mode(self, *, pvk: str, pan: str) -> PinMailer: ...


STATUS_ACTIONS = {
    "lost": ("lost", False),
    "stolen": ("stolen", False),
    "block": ("blocked", False),
    "unblock": ("active", True),
    "close": ("closed", False),
}


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    cards = subparsers.add_parser("cards", help="cards", parents=[common])
    sub = cards.add_subparsers(dest="cards_command", metavar="ACTION")
    sub.required = True
    issue = sub.add_parser("issue", help="issue a card (PIN mailer printed in test mode only)",
                           parents=[common])
    add_pan_input(issue)
    issue.add_argument("--expiry", required=True, help="YYMM")
    issue.add_argument("--account", required=True)
    issue.add_argument("--limits", default="{}", help="JSON object of limit overrides")
    add_dsn_flag(issue)
    add_json_flag(issue)
    issue.set_defaults(handler=_issue)
    for action, (status, reset) in STATUS_ACTIONS.items():
        parser = sub.add_parser(action, help=f"card status: {status}", parents=[common])
        add_pan_input(parser)
        add_dsn_flag(parser)
        add_json_flag(parser)
        parser.set_defaults(handler=_set_status, status=status, reset_tries=reset)
    for action, handler, text in (("reset-tries", _reset_tries, "reset the PIN try counter"),
                                  ("show", _show, "show a card (masked)")):
        parser = sub.add_parser(action, help=text, parents=[common])
        add_pan_input(parser)
        add_dsn_flag(parser)
        add_json_flag(parser)
        parser.set_defaults(handler=handler)


def _run(config: Config, fn: Callable[[CardIssuingHsm, Database], Awaitable[dict[str, Any]]],
         *, test_mode: bool | None = None) -> dict[str, Any]:
    from switch.authorization.issuing import CardAdminError
    from switch.authorization.limits import LimitsError
    from switch.authorization.wiring import open_hsm_for
    from switch.hsm import HsmError

    try:
        hsm = open_hsm_for(config, test_mode=test_mode)
    except HsmError as exc:
        raise CliError(str(exc)) from exc

    async def work(db: Database) -> dict[str, Any]:
        return await fn(hsm, db)

    try:
        return run_with_database(config, work)
    except (CardAdminError, LimitsError, HsmError) as exc:
        raise CliError(str(exc), exit_code=1) from exc


def _print(args: argparse.Namespace, card: dict[str, Any], text: str) -> None:
    if args.json:
        print_json(card)
    else:
        print(text)


def _issue(args: argparse.Namespace, config: Config) -> int:
    from ledger_adapter import AccountNotFound
    from switch.authorization.issuing import issuer_pvk, upsert_card
    from switch.authorization.wiring import open_ledger

    pan = read_pan(args)
    if not config.hsm.test_mode:
        raise CliError("issuing a card prints its PIN mailer, which this software HSM does only "
                       "in test mode (hsm.test_mode = true, env ATM_SWITCH_HSM_TEST_MODE=1)")
    try:
        limits = json.loads(args.limits)
    except json.JSONDecodeError as exc:
        raise CliError(f"--limits is not JSON: {exc}") from exc
    if not isinstance(limits, dict):
        raise CliError("--limits must be a JSON object")

    async def work(hsm: CardIssuingHsm, db: Database) -> dict[str, Any]:
        try:
            await open_ledger(db).get_account(args.account)
        except AccountNotFound as exc:
            raise CliError(f"no such account: {args.account}", exit_code=1) from exc
        mailer = await hsm.issue_pin_mailer_test_mode(pvk=await issuer_pvk(db, hsm), pan=pan)
        card, created = await upsert_card(
            db, hsm, pan=pan, expiry=args.expiry, account_id=args.account,
            verification=mailer.verification, limits=limits,
        )
        return card.as_dict() | {"created": created, "pin_mailer": mailer.pin}

    issued = _run(config, work)
    _print(args, issued, f"card {issued['pan']} issued on account {issued['account']}\n"
                         f"PIN MAILER (test mode): PIN {issued['pin_mailer']}")
    return 0


def _set_status(args: argparse.Namespace, config: Config) -> int:
    from switch.authorization.issuing import set_card_status

    pan = read_pan(args)

    async def work(hsm: CardIssuingHsm, db: Database) -> dict[str, Any]:
        card = await set_card_status(db, hsm, pan, args.status, reset_tries=args.reset_tries)
        return card.as_dict()

    card = _run(config, work)
    _print(args, card, f"card {card['pan']} is {card['status']}")
    return 0


def _reset_tries(args: argparse.Namespace, config: Config) -> int:
    from switch.authorization.issuing import reset_tries

    pan = read_pan(args)

    async def work(hsm: CardIssuingHsm, db: Database) -> dict[str, Any]:
        return (await reset_tries(db, hsm, pan)).as_dict()

    card = _run(config, work)
    _print(args, card, f"card {card['pan']}: PIN tries reset, status {card['status']}")
    return 0


def _show(args: argparse.Namespace, config: Config) -> int:
    from switch.authorization.issuing import find_card

    pan = read_pan(args)

    async def work(hsm: CardIssuingHsm, db: Database) -> dict[str, Any]:
        return (await find_card(db, hsm, pan)).as_dict()

    card = _run(config, work)
    _print(args, card, f"card {card['pan']}: {card['status']}, account {card['account']}, "
                       f"expiry {card['expiry']}, PIN tries {card['pin_tries']}")
    return 0
