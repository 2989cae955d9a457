"""``atm-sim interactive``: one customer session with the screen printed here and the keys typed
here. The menu keys are the screen's option names; amounts are typed in yuan (``500``); the PIN
is typed without echo and keyed into the EPP emulator, which encrypts it like any PIN."""

from __future__ import annotations

import getpass
from pathlib import Path

import trio

from terminals.atm.screens import Screen
from terminals.emulators.pinpad import PinPadEmulator
from terminals.scenarios.loader import Scenario, SessionScript, TerminalSettings
from terminals.scenarios.runner import running_atm

_MINOR_PER_UNIT = 100
_RULE = "-" * 40


class InteractiveCustomer:
    """A person at this terminal's keyboard."""

    def __init__(self) -> None:
        self.pinpad: PinPadEmulator | None = None

    async def show(self, screen: Screen) -> None:
        print(f"{_RULE}\n{screen.render()}", flush=True)

    async def choose(self, screen: Screen) -> str | None:
        await self.show(screen)
        while True:
            answer = (await _read_line("> ")).strip()
            if answer in screen.options or (screen.accepts_input and answer):
                return answer
            print(f"choose one of: {', '.join(screen.options)}", flush=True)

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
