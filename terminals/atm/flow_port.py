"""What a transaction flow may ask of the firmware: the one join between the two.

:mod:`terminals.atm.flows` holds the transaction states and depends on this Protocol only;
:class:`terminals.atm.firmware.AtmFirmware` implements it (structurally: mypy checks it where
the firmware hands itself to :func:`terminals.atm.flows.handlers`). So the flows never import
the firmware, and the firmware imports the flows without a cycle.
"""

from __future__ import annotations

from typing import Protocol

from switch.protocol.message import Message
from terminals.atm.config import AtmConfig
from terminals.atm.devices import AtmDevices
from terminals.atm.screens import Screen
from terminals.atm.session import Customer, CustomerSession, TransactionRecord
from terminals.atm.states import Event
from terminals.journal import CassetteCounters, Journal


class FlowHost(Protocol):
    """The firmware's services a transaction state uses: screens, PIN, host, cash, journal."""

    @property
    def config(self) -> AtmConfig: ...

    @property
    def devices(self) -> AtmDevices: ...

    @property
    def customer(self) -> Customer: ...

    @property
    def journal(self) -> Journal: ...

    @property
    def counters(self) -> CassetteCounters: ...

    @property
    def denominations(self) -> list[int]: ...

    @property
    def deposits_stored(self) -> dict[int, int]:
        """Notes stored by denomination (minor units): flows add deposited notes here."""

    @property
    def last_response(self) -> Message | None:
        """The host's last answer, for the replies a flow reads (balances, statement)."""

    @property
    def language(self) -> str: ...

    def current_session(self) -> CustomerSession:
        """The card session; raises when there is none (a flow state always has one)."""

    def screen(self, screen_name: str, *, options: tuple[str, ...] = (),
               accepts_input: bool = False, **values: str) -> Screen: ...

    async def show(self, screen_name: str, **values: str) -> None: ...

    async def choose(self, shown: Screen) -> str | None:
        """The customer's answer, or None when they do not answer in time."""

    async def enter_pin(self, purpose: str) -> str | None:
        """A PIN block from the EPP, or None if cancelled or timed out."""

    async def authorize(self, kind: str, processing_code: str, amount: int, *,
                        with_pin: bool = True, to_account: str | None = None,
                        tags: dict[str, str] | None = None) -> Event:
        """Send a 0200 for the current session and turn the answer into an event."""

    def reverse(self, record: TransactionRecord, reason: str, dispensed: int | None = None
                ) -> None:
        """Queue a 0420 for the transaction (store-and-forward)."""

    def complete(self, record: TransactionRecord, amount: int) -> None:
        """Queue a 0220 with the final amount (store-and-forward)."""

    def save_counters(self, counters: CassetteCounters | None = None) -> None: ...
