"""The ATM firmware's state machine: every legal move in one table (h11 style).

Each state has a handler in :mod:`terminals.atm.firmware` that does the state's work (drive a
device, ask the customer, ask the host) and returns one :class:`Event`; ``TRANSITIONS`` says
where that event leads. An event the table does not list for the current state is a firmware bug
and raises :class:`IllegalTransition` instead of wandering into an undefined state.
docs/simulator.md draws its diagram from this table.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    IDLE = "idle"
    READING_CARD = "reading_card"
    CHOOSING_LANGUAGE = "choosing_language"
    ENTERING_PIN = "entering_pin"
    MENU = "menu"
    WITHDRAWAL_AMOUNT = "withdrawal_amount"
    INSUFFICIENT_CASH = "insufficient_cash"
    WITHDRAWAL_AUTHORIZING = "withdrawal_authorizing"
    DISPENSING = "dispensing"
    DEPOSIT_INSERTING = "deposit_inserting"
    DEPOSIT_CONFIRMING = "deposit_confirming"
    DEPOSIT_AUTHORIZING = "deposit_authorizing"
    TRANSFER_PAYEE = "transfer_payee"
    TRANSFER_NAME_INQUIRY = "transfer_name_inquiry"
    TRANSFER_CONFIRMING_PAYEE = "transfer_confirming_payee"
    TRANSFER_AMOUNT = "transfer_amount"
    TRANSFER_AUTHORIZING = "transfer_authorizing"
    BALANCE_INQUIRY = "balance_inquiry"
    SHOWING_BALANCE = "showing_balance"
    MINI_STATEMENT = "mini_statement"
    PIN_CHANGE_NEW = "pin_change_new"
    PIN_CHANGE_CONFIRM = "pin_change_confirm"
    PIN_CHANGE_AUTHORIZING = "pin_change_authorizing"
    PRINTING_RECEIPT = "printing_receipt"
    SHOWING_DECLINE = "showing_decline"
    ANOTHER_TRANSACTION = "another_transaction"
    RETURNING_CARD = "returning_card"
    RETAINING_CARD = "retaining_card"
    STOPPED = "stopped"


class Event(StrEnum):
    CARD_INSERTED = "card_inserted"
    SHUTDOWN = "shutdown"
    CARD_READ = "card_read"
    CARD_UNREADABLE = "card_unreadable"
    LANGUAGE_CHOSEN = "language_chosen"
    PIN_ENTERED = "pin_entered"
    PINS_DIFFER = "pins_differ"
    CANCELLED = "cancelled"  # the customer pressed cancel, or did not answer in time
    SELECTED_WITHDRAWAL = "selected_withdrawal"
    SELECTED_DEPOSIT = "selected_deposit"
    SELECTED_TRANSFER = "selected_transfer"
    SELECTED_BALANCE = "selected_balance"
    SELECTED_MINI_STATEMENT = "selected_mini_statement"
    SELECTED_PIN_CHANGE = "selected_pin_change"
    AMOUNT_CHOSEN = "amount_chosen"
    CASH_UNAVAILABLE = "cash_unavailable"
    ACKNOWLEDGED = "acknowledged"
    NOTES_COUNTED = "notes_counted"
    ADD_MORE = "add_more"
    CONFIRMED = "confirmed"
    PAYEE_ENTERED = "payee_entered"
    APPROVED = "approved"
    DECLINED = "declined"
    WRONG_PIN = "wrong_pin"
    RETAIN_CARD = "retain_card"
    HOST_UNAVAILABLE = "host_unavailable"
    CHIP_ERROR = "chip_error"  # the chip could not give a cryptogram: no 0200 was sent
    RETURN_CARD = "return_card"  # 59 suspected fraud: spec 6 says return the card, now
    DISPENSED = "dispensed"  # all or part of the notes went out: print what went out
    DISPENSE_FAILED = "dispense_failed"  # nothing went out
    RECEIPT_DONE = "receipt_done"
    ANOTHER = "another"
    FINISHED = "finished"
    CARD_RETURNED = "card_returned"
    CARD_RETAINED = "card_retained"


class IllegalTransition(Exception):
    """The firmware produced an event its current state does not allow (a firmware bug)."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"event {event.value!r} is not allowed in state {state.value!r}")
        self.state = state
        self.event = event


def _host_outcomes(on_approved: State) -> dict[Event, State]:
    """What every authorization state does with the host's answer."""
    return {
        Event.APPROVED: on_approved,
        Event.DECLINED: State.SHOWING_DECLINE,
        Event.WRONG_PIN: State.ENTERING_PIN,  # 55: enter the PIN again, then choose again
        Event.RETAIN_CARD: State.RETAINING_CARD,  # 41 / 43, and 75 when so configured
        Event.HOST_UNAVAILABLE: State.RETURNING_CARD,  # timeout, disconnect: reversed, card out
        Event.CHIP_ERROR: State.RETURNING_CARD,  # the chip stopped answering: card out
        Event.RETURN_CARD: State.RETURNING_CARD,  # 59: no further transaction with this card
    }


_MENU_CHOICES = {
    Event.SELECTED_WITHDRAWAL: State.WITHDRAWAL_AMOUNT,
    Event.SELECTED_DEPOSIT: State.DEPOSIT_INSERTING,
    Event.SELECTED_TRANSFER: State.TRANSFER_PAYEE,
    Event.SELECTED_BALANCE: State.BALANCE_INQUIRY,
    Event.SELECTED_MINI_STATEMENT: State.MINI_STATEMENT,
    Event.SELECTED_PIN_CHANGE: State.PIN_CHANGE_NEW,
    Event.CANCELLED: State.RETURNING_CARD,
}
_BACK_TO_MENU = State.ANOTHER_TRANSACTION

TRANSITIONS: dict[State, dict[Event, State]] = {
    State.IDLE: {Event.CARD_INSERTED: State.READING_CARD, Event.SHUTDOWN: State.STOPPED},
    State.READING_CARD: {
        Event.CARD_READ: State.CHOOSING_LANGUAGE,
        Event.CARD_UNREADABLE: State.RETURNING_CARD,
        Event.CARD_RETAINED: State.IDLE,  # jammed: the reader keeps it
    },
    State.CHOOSING_LANGUAGE: {
        Event.LANGUAGE_CHOSEN: State.ENTERING_PIN,
        Event.CANCELLED: State.RETURNING_CARD,
    },
    State.ENTERING_PIN: {Event.PIN_ENTERED: State.MENU, Event.CANCELLED: State.RETURNING_CARD},
    State.MENU: _MENU_CHOICES,
    State.WITHDRAWAL_AMOUNT: {
        Event.AMOUNT_CHOSEN: State.WITHDRAWAL_AUTHORIZING,
        Event.CASH_UNAVAILABLE: State.INSUFFICIENT_CASH,
        Event.CANCELLED: _BACK_TO_MENU,
    },
    State.INSUFFICIENT_CASH: {
        Event.ACKNOWLEDGED: State.WITHDRAWAL_AMOUNT,
        Event.CANCELLED: _BACK_TO_MENU,
    },
    State.WITHDRAWAL_AUTHORIZING: _host_outcomes(State.DISPENSING),
    State.DISPENSING: {
        Event.DISPENSED: State.PRINTING_RECEIPT,
        Event.DISPENSE_FAILED: State.SHOWING_DECLINE,
    },
    State.DEPOSIT_INSERTING: {
        Event.NOTES_COUNTED: State.DEPOSIT_CONFIRMING,
        Event.CANCELLED: _BACK_TO_MENU,
    },
    State.DEPOSIT_CONFIRMING: {
        Event.ADD_MORE: State.DEPOSIT_INSERTING,
        Event.CONFIRMED: State.DEPOSIT_AUTHORIZING,
        Event.CANCELLED: _BACK_TO_MENU,
    },
    State.DEPOSIT_AUTHORIZING: _host_outcomes(State.PRINTING_RECEIPT),
    State.TRANSFER_PAYEE: {
        Event.PAYEE_ENTERED: State.TRANSFER_NAME_INQUIRY,
        Event.CANCELLED: _BACK_TO_MENU,
    },
    State.TRANSFER_NAME_INQUIRY: _host_outcomes(State.TRANSFER_CONFIRMING_PAYEE),
    State.TRANSFER_CONFIRMING_PAYEE: {
        Event.CONFIRMED: State.TRANSFER_AMOUNT,
        Event.CANCELLED: _BACK_TO_MENU,
    },
    State.TRANSFER_AMOUNT: {
        Event.AMOUNT_CHOSEN: State.TRANSFER_AUTHORIZING,
        Event.CANCELLED: _BACK_TO_MENU,
    },
    State.TRANSFER_AUTHORIZING: _host_outcomes(State.PRINTING_RECEIPT),
    State.BALANCE_INQUIRY: _host_outcomes(State.SHOWING_BALANCE),
    State.SHOWING_BALANCE: {Event.ACKNOWLEDGED: _BACK_TO_MENU},
    State.MINI_STATEMENT: _host_outcomes(State.PRINTING_RECEIPT),
    State.PIN_CHANGE_NEW: {
        Event.PIN_ENTERED: State.PIN_CHANGE_CONFIRM,
        Event.CANCELLED: _BACK_TO_MENU,
    },
    State.PIN_CHANGE_CONFIRM: {
        Event.PIN_ENTERED: State.PIN_CHANGE_AUTHORIZING,
        Event.PINS_DIFFER: State.PIN_CHANGE_NEW,
        Event.CANCELLED: _BACK_TO_MENU,
    },
    State.PIN_CHANGE_AUTHORIZING: _host_outcomes(State.PRINTING_RECEIPT),
    State.PRINTING_RECEIPT: {Event.RECEIPT_DONE: _BACK_TO_MENU},
    State.SHOWING_DECLINE: {Event.ACKNOWLEDGED: _BACK_TO_MENU},
    State.ANOTHER_TRANSACTION: {Event.ANOTHER: State.MENU, Event.FINISHED: State.RETURNING_CARD},
    State.RETURNING_CARD: {Event.CARD_RETURNED: State.IDLE, Event.CARD_RETAINED: State.IDLE},
    State.RETAINING_CARD: {Event.CARD_RETAINED: State.IDLE},
    State.STOPPED: {},
}


def next_state(state: State, event: Event) -> State:
    """Where ``event`` leads from ``state``; IllegalTransition when the table has no entry."""
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition(state, event) from None
