"""One customer's visit: the card, the choices, and a record of every transaction for reports.

``Customer`` is the person in front of the ATM as the firmware sees them: they read screens,
choose keys, type amounts, put notes in and type PINs on the EPP. Scenario scripts and the
interactive front end implement it. Records keep only masked card data (they are printed and
written to JSON).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ops.masking import masked_repr
from terminals.atm.chip import ChipApplication
from terminals.atm.screens import Screen
from terminals.journal import mask_pan


class Customer(Protocol):
    async def show(self, screen: Screen) -> None:
        """An information screen (nothing to answer)."""

    async def choose(self, screen: Screen) -> str | None:
        """One of ``screen.options`` or, when ``screen.accepts_input``, typed text.
        None: the customer walked away (the screen timed out)."""

    async def prepare_pin(self, purpose: str) -> None:
        """The EPP is about to take a PIN (``pin``, ``new_pin``, ``confirm_new_pin``)."""

    async def insert_notes(self, screen: Screen) -> list[int] | None:
        """Notes put into the cash-in slot (denominations, minor units); None: cancel."""


@dataclass
class TransactionRecord:
    """What happened to one transaction, for the results, the journal and the receipt."""

    type: str
    amount: int
    stan: str = ""
    rrn: str = ""
    response_code: str | None = None  # None: no response from the host
    outcome: str = "pending"
    auth_id: str = ""
    dispensed: int | None = None
    reversal_reason: str | None = None
    completion_amount: int | None = None
    balances: dict[str, int] | None = None
    payee_account: str | None = None
    payee_name: str | None = None
    statement: list[dict[str, Any]] | None = None
    deposit_notes_returned: int = 0
    text: str = ""
    cryptogram: str | None = None  # chip: what the second GENERATE AC returned (TC / AAC)

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in (None, "")}


@dataclass
class CustomerSession:
    """State of the current card session (never persisted: the PIN block lives only here)."""

    __repr__ = masked_repr  # PAN 6+4, secrets wiped (issue 11 item 5)

    track2: str
    pan: str
    expiry: str
    language: str = "en"
    pin_block: str | None = None
    wrong_pin: bool = False
    transactions: list[TransactionRecord] = field(default_factory=list)
    card_outcome: str = ""
    # The transaction in progress.
    current: TransactionRecord | None = None
    request_fields: dict[str, str] = field(default_factory=dict)
    pending_amount: int = 0
    withdrawal_plan: tuple[int, ...] = ()
    deposit_rejected: int = 0
    payee_account: str | None = None
    payee_name: str = ""
    escrow: list[int] = field(default_factory=list)
    new_pin_block: str | None = None
    pin_mismatches: int = 0
    receipt_kind: str = ""
    chip: ChipApplication | None = None  # read from the chip (22 = 051); None: stripe

    @property
    def entry_mode(self) -> str:
        return "chip" if self.chip is not None else "stripe"

    @property
    def masked_pan(self) -> str:
        return mask_pan(self.pan)

    def summary(self) -> dict[str, Any]:
        return {
            "card": self.masked_pan,
            "language": self.language,
            "entry": self.entry_mode,
            "card_outcome": self.card_outcome,
            "transactions": [record.as_dict() for record in self.transactions],
        }


def is_chip_service_code(track2: str) -> bool:
    """ISO/IEC 7813 service code digit 1 = 2 or 6: the card has a chip and must be read by it."""
    rest = track2.partition("=")[2]
    return len(rest) >= 5 and rest[4] in "26"


def parse_track2(track2: str) -> tuple[str, str]:
    """PAN and expiry (YYMM) from track 2 ``PAN=YYMM...``; ValueError when malformed."""
    pan, separator, rest = track2.partition("=")
    if not separator or not pan.isdigit() or not 12 <= len(pan) <= 19 or len(rest) < 4 or not (
        rest[:4].isdigit()
    ):
        raise ValueError("track 2 is not PAN '=' YYMM ...")
    return pan, rest[:4]
