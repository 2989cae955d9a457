"""``atm-sim interactive`` and ``atm-switch demo --interactive``: the ATM's screen printed here
and its keys typed here. The function keys are letters (``A``, ``B``...) beside labels in the
customer's language; amounts are typed in yuan
(``500``); the PIN is typed without echo and keyed into the EPP emulator, which encrypts it like
any PIN. ``run_card_menu`` lets the person pick a demo card (stripe or chip) again and again,
which is what QA needs to try any flow without writing a scenario."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from terminals.atm.screens import Screen
from terminals.emulators.pinpad import PinPadEmulator
from terminals.scenarios.loader import ChipScript, Scenario, SessionScript, TerminalSettings
from terminals.scenarios.runner import running_atm
from terminals.scenarios.wallet import ChipWallet

_MINOR_PER_UNIT = 100
_RULE = "-" * 40
_KEY_HINT = {"en": "press one of the keys {keys}", "zh": "请按以下按键之一：{keys}"}


class InteractiveCustomer:
    """A person at this terminal's keyboard."""

    def __init__(self) -> None:
        self.pinpad: PinPadEmulator | None = None

    async def show(self, screen: Screen) -> None:
        print(f"{_RULE}\n{screen.render()}", flush=True)

    async def choose(self, screen: Screen) -> str | None:
        await self.show(screen)
        while True:
            try:
                answer = (await _read_line("> ")).strip()
            except EOFError:
                return None  # the keyboard is gone: the customer walked away
            chosen = screen.option_for(answer)
            if chosen is not None:
                return chosen
            if screen.accepts_input and answer:
                return answer
            print(_KEY_HINT[screen.language if screen.language in _KEY_HINT else "en"]
                  .format(keys=", ".join(screen.keys)), flush=True)

    async def prepare_pin(self, purpose: str) -> None:
        prompt = {"pin": "PIN", "new_pin": "new PIN", "confirm_new_pin": "new PIN again"}
        pin = await trio.to_thread.run_sync(getpass.getpass, f"{prompt.get(purpose, 'PIN')}: ",
                                            abandon_on_cancel=True)
        if self.pinpad is not None:
            self.pinpad.customer_pin = pin if pin.isdigit() else None

    async def insert_notes(self, screen: Screen) -> list[int] | None:
        await self.show(screen)
        answer = await _read_line("notes in yuan, e.g. '100 100 50' (empty: cancel)> ")
        try:
            return [int(note) * _MINOR_PER_UNIT for note in answer.split()] or None
        except ValueError:
            return None


async def _read_line(prompt: str) -> str:
    return str(await trio.to_thread.run_sync(input, prompt, abandon_on_cancel=True))


async def run_interactive(card: str, host: str, port: int, data_dir: Path, terminal_id: str,
                          tmk: str) -> None:
    customer = InteractiveCustomer()
    scenario = Scenario("interactive", TerminalSettings(terminal_id=terminal_id, tmk=tmk.upper(),
                                                        customer_timeout_s=300.0),
                        (SessionScript(card),))
    async with running_atm(scenario, host=host, port=port, data_dir=data_dir,
                           customer=customer) as atm:
        customer.pinpad = atm.bench.pinpad
        await atm.insert_card(card)
        await atm.firmware.wait_sessions(1)
        await atm.link.wait_advices_sent(10.0)


@dataclass(frozen=True, slots=True)
class DemoCard:
    """A card of the demo's test data, shown with its PIN (test data, on purpose)."""

    label: str
    track2: str
    pin: str
    chip: ChipScript | None = None

    @property
    def kind(self) -> str:
        return "chip" if self.chip else "stripe"


QUIT_KEYS = frozenset({"q", "quit", "exit"})


def card_menu(cards: Sequence[DemoCard]) -> str:
    lines = [_RULE, "Demo cards (test data: the PINs are shown on purpose)"]
    for number, card in enumerate(cards, start=1):
        pan = card.track2.partition("=")[0]
        lines.append(f"  [{number}] {card.label:<28} {pan}  {card.kind:<6} PIN {card.pin}")
    lines.append("  [q] quit")
    return "\n".join(lines)


async def run_card_menu(cards: Sequence[DemoCard], *, host: str, port: int, data_dir: Path,
                        terminal_id: str, tmk: str) -> list[dict[str, Any]]:
    """Serve one person at the ATM until they quit: pick a card, use the ATM, pick again."""
    customer = InteractiveCustomer()
    scenario = Scenario("interactive", TerminalSettings(terminal_id=terminal_id, tmk=tmk.upper(),
                                                        customer_timeout_s=300.0),
                        (SessionScript(cards[0].track2),))
    async with running_atm(scenario, host=host, port=port, data_dir=data_dir,
                           customer=customer) as atm:
        customer.pinpad = atm.bench.pinpad
        wallet = ChipWallet(data_dir)
        while (card := await _pick_card(cards)) is not None:
            done = len(atm.firmware.completed_sessions)
            session = SessionScript(card.track2, chip=card.chip)
            await atm.insert_card(card.track2, wallet.card_for(session))
            await atm.firmware.wait_sessions(done + 1)
            wallet.save()
        await atm.link.wait_advices_sent(10.0)
        return list(atm.firmware.completed_sessions)


async def _pick_card(cards: Sequence[DemoCard]) -> DemoCard | None:
    while True:
        print(card_menu(cards), flush=True)
        try:
            answer = (await _read_line("card> ")).strip().lower()
        except EOFError:
            return None
        if answer in QUIT_KEYS:
            return None
        if answer.isdigit() and 1 <= int(answer) <= len(cards):
            return cards[int(answer) - 1]
        print(f"type 1-{len(cards)} or q", flush=True)
