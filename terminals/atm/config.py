"""The ATM's own configuration: who it is, what it pays out, how long it waits for people."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AtmConfig:
    terminal_id: str = "ATM00001"
    acquirer_id: str = "123456"
    card_acceptor_id: str = "ATMSWITCH000001"
    name_location: str = "ATM SWITCH DEMO TERMINAL        SHANGHAI"
    currency: str = "156"
    # Fast-amount keys on the withdrawal screen, minor units (CNY 100, 300, 500, 1000, 2000).
    fast_amounts_minor: tuple[int, ...] = (10_000, 30_000, 50_000, 100_000, 200_000)
    # Spec 6: on 75 the terminal retains or returns the card, per terminal configuration.
    retain_card_on_75: bool = True
    # Notes loaded per cassette at the last replenishment (the operator's figures).
    cassette_notes: tuple[int, ...] = (500, 500, 500, 500)
    # True: the cassettes were just filled with ``cassette_notes`` (a scenario run, which loads
    # its own cassettes), so counters kept from an earlier run are closed and restart from them.
    replenished_at_start: bool = False
    # The cash-in module takes these notes; anything else is returned to the customer.
    accepted_notes_minor: tuple[int, ...] = (10_000, 5_000, 2_000, 1_000)
    deposit_notes_max: int = 100  # escrow capacity of the cash-in module
    pin_length_min: int = 4
    pin_length_max: int = 12  # ISO 9564 format 0
    pin_timeout_s: int = 30
    customer_timeout_s: float = 30.0  # any screen waiting for a choice
    card_take_timeout_s: float = 30.0  # then the card is retained
    cash_take_timeout_s: float = 30.0  # then the notes are retracted
    card_wait_poll_s: float = 0.5  # how long one "wait for a card" lasts before re-checking
    host_ready_timeout_s: float = 30.0  # at start: sign-on and key exchange
    amount_entry_tries_max: int = 3
    # False: a reader without chip contacts (every card read by stripe, 22 = 021), to show the
    # switch refusing a chip card read by stripe (spec 11, 05).
    chip_reader: bool = True
    receipt_header: tuple[str, ...] = field(default=("ATM SWITCH", "自动柜员机"))
