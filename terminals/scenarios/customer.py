"""A customer who follows a session script: answers each screen by its name, types PINs on the
EPP emulator's keypad (through its simulated-customer hook), and puts notes in for deposits."""

from __future__ import annotations

from dataclasses import dataclass, field

from terminals.atm.screens import Screen
from terminals.emulators.pinpad import PinPadEmulator
from terminals.scenarios.loader import SessionScript, TransactionScript

_MINOR_PER_UNIT = 100


def amount_text(minor: int) -> str:
    """What the customer types for an amount in minor units: ``500`` or ``12.50``."""
    units, cents = divmod(minor, _MINOR_PER_UNIT)
    return f"{units}" if cents == 0 else f"{units}.{cents:02d}"


@dataclass
class ScriptedCustomer:
    """Plays ``SessionScript``s one after another (``begin`` starts the next)."""

    pinpad: PinPadEmulator
    screens: list[Screen] = field(default_factory=list)
    _session: SessionScript | None = None
    _index: int = 0
    _pins_used: int = 0
    _deposit_round: int = 0

    def begin(self, session: SessionScript) -> None:
        self._session, self._index, self._pins_used, self._deposit_round = session, 0, 0, 0

    @property
    def transaction(self) -> TransactionScript | None:
        if self._session is None or self._index >= len(self._session.transactions):
            return None
        return self._session.transactions[self._index]

    async def show(self, screen: Screen) -> None:
        self.screens.append(screen)

    async def choose(self, screen: Screen) -> str | None:
        self.screens.append(screen)
        return self._answer(screen)

    def _answer(self, screen: Screen) -> str | None:
        session, transaction = self._session, self.transaction
        name = screen.name
        if name == "language":
            return session.language if session else "en"
        if name == "another":
            self._index += 1
            self._deposit_round = 0
            return "yes" if self.transaction is not None else "no"
        if transaction is None:
            return "cancel" if "cancel" in screen.options else "ok"
        answers = {
            "menu": transaction.type,
            "withdrawal_amount": amount_text(transaction.amount),
            "transfer_amount": amount_text(transaction.amount),
            "transfer_payee": transaction.payee,
            "transfer_confirm_payee": "confirm" if transaction.confirm else "cancel",
            "insufficient_cash": "cancel",
            "deposit_confirm": "add_more"
            if self._deposit_round < len(transaction.notes) else "confirm",
        }
        return answers.get(name, "ok")

    async def prepare_pin(self, purpose: str) -> None:
        session, transaction = self._session, self.transaction
        if purpose == "new_pin" and transaction is not None:
            pin = transaction.new_pin
        elif purpose == "confirm_new_pin" and transaction is not None:
            pin = transaction.confirm_pin
        else:
            pins = session.pins if session else ("0000",)
            pin = pins[min(self._pins_used, len(pins) - 1)]
            self._pins_used += 1
        self.pinpad.customer_pin = pin

    async def insert_notes(self, screen: Screen) -> list[int] | None:
        self.screens.append(screen)
        transaction = self.transaction
        if transaction is None or self._deposit_round >= len(transaction.notes):
            return None
        notes = list(transaction.notes[self._deposit_round])
        self._deposit_round += 1
        return notes
