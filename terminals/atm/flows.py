"""The transaction states of the firmware: withdrawal, deposit, transfer, balance, mini
statement and PIN change. Each function handles one state of :mod:`terminals.atm.states` and
returns an event; :func:`handlers` hands them to the firmware's loop. They see the firmware
only through :class:`terminals.atm.flow_port.FlowHost`, so this module never imports it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from switch.protocol.message import Message
from terminals.atm import replies
from terminals.atm.cash import CassetteView, amount_is_dispensable, plan_dispense
from terminals.atm.flow_port import FlowHost
from terminals.atm.screens import format_amount
from terminals.atm.session import TransactionRecord
from terminals.atm.states import Event, State
from terminals.devices.dispenser import CassetteState
from terminals.drivers.dispenser import DispenseResult
from terminals.drivers.errors import DriverError

Handler = Callable[[], Awaitable[Event]]
_UNUSABLE = frozenset({CassetteState.EMPTY, CassetteState.MISSING})
_MINOR_PER_UNIT = 100
account_chars_max = 28  # spec 2, fields 102/103
# New PIN and its confirmation differ this many times: the PIN change is abandoned.
pin_change_mismatches_max = 2


def handlers(atm: FlowHost) -> dict[State, Handler]:
    def bind(handler: Callable[[FlowHost], Awaitable[Event]]) -> Handler:
        return lambda: handler(atm)

    return {
        State.WITHDRAWAL_AMOUNT: bind(withdrawal_amount),
        State.INSUFFICIENT_CASH: bind(insufficient_cash),
        State.WITHDRAWAL_AUTHORIZING: bind(withdrawal_authorizing),
        State.DISPENSING: bind(dispensing),
        State.DEPOSIT_INSERTING: bind(deposit_inserting),
        State.DEPOSIT_CONFIRMING: bind(deposit_confirming),
        State.DEPOSIT_AUTHORIZING: bind(deposit_authorizing),
        State.TRANSFER_PAYEE: bind(transfer_payee),
        State.TRANSFER_NAME_INQUIRY: bind(transfer_name_inquiry),
        State.TRANSFER_CONFIRMING_PAYEE: bind(transfer_confirming_payee),
        State.TRANSFER_AMOUNT: bind(transfer_amount),
        State.TRANSFER_AUTHORIZING: bind(transfer_authorizing),
        State.BALANCE_INQUIRY: bind(balance_inquiry),
        State.SHOWING_BALANCE: bind(showing_balance),
        State.MINI_STATEMENT: bind(mini_statement),
        State.PIN_CHANGE_NEW: bind(pin_change_new),
        State.PIN_CHANGE_CONFIRM: bind(pin_change_confirm),
        State.PIN_CHANGE_AUTHORIZING: bind(pin_change_authorizing),
    }


def parse_amount(text: str) -> int | None:
    """Typed amount in currency units (``500`` or ``12.50``) to minor units; None if invalid."""
    units, _, cents = text.strip().partition(".")
    if not units.isdigit() or (cents and (not cents.isdigit() or len(cents) > 2)):
        return None
    return int(units) * _MINOR_PER_UNIT + int(cents.ljust(2, "0") or "0")


async def _ask_amount(atm: FlowHost, name: str, options: tuple[str, ...]) -> int | None:
    """An amount from fast keys or typed digits; None when the customer cancels."""
    for _attempt in range(atm.config.amount_entry_tries_max):
        answer = await atm.choose(atm.screen(name, options=(*options, "cancel"),
                                             accepts_input=True))
        if answer is None or answer == "cancel":
            return None
        amount = parse_amount(answer)
        if amount is not None and amount > 0:
            return amount
        await atm.show("invalid_amount")
    return None


# -- withdrawal -------------------------------------------------------------------------------
async def withdrawal_amount(atm: FlowHost) -> Event:
    session = atm.current_session()
    fast = tuple(str(amount // _MINOR_PER_UNIT) for amount in atm.config.fast_amounts_minor)
    for _attempt in range(atm.config.amount_entry_tries_max):
        amount = await _ask_amount(atm, "withdrawal_amount", fast)
        if amount is None:
            return Event.CANCELLED
        if amount_is_dispensable(amount):
            break
        await atm.show("invalid_amount")
    else:
        return Event.CANCELLED
    plan = plan_dispense(amount, await _cassette_views(atm))
    session.current = None
    session.pending_amount = amount
    if plan is None:
        atm.journal.record("insufficient_cash", amount=amount)
        return Event.CASH_UNAVAILABLE
    session.withdrawal_plan = plan
    return Event.AMOUNT_CHOSEN


async def _cassette_views(atm: FlowHost) -> list[CassetteView]:
    """The counters' note counts, with cassettes the dispenser reports empty/missing unusable."""
    try:
        states = [info.state for info in await atm.devices.dispenser.cassette_info()]
    except DriverError as exc:
        atm.journal.record("dispenser_unavailable", reason=str(exc))
        return []
    return [CassetteView(unit.denomination, unit.count, state not in _UNUSABLE)
            for unit, state in zip(atm.counters.units, states, strict=True)]


async def insufficient_cash(atm: FlowHost) -> Event:
    amount = atm.current_session().pending_amount
    answer = await atm.choose(atm.screen("insufficient_cash", options=("ok", "cancel"),
                                         amount=format_amount(amount, atm.language)))
    return Event.ACKNOWLEDGED if answer == "ok" else Event.CANCELLED


async def withdrawal_authorizing(atm: FlowHost) -> Event:
    amount = atm.current_session().pending_amount
    return await atm.authorize("withdrawal", "010000", amount)


async def dispensing(atm: FlowHost) -> Event:
    """Dispense the plan, present the notes, then complete (0220) or reverse (0420)."""
    session = atm.current_session()
    record = session.current
    if record is None:
        raise RuntimeError("dispensing without an approved withdrawal")
    try:
        result = await atm.devices.dispenser.dispense(session.withdrawal_plan)
    except DriverError as exc:
        # Silence or a broken line after DISPENSE: nothing is proven dispensed (docs).
        atm.journal.record("dispense_unknown", stan=record.stan, reason=str(exc))
        return _dispense_failed(atm, record)
    atm.counters.record_dispense(result.checked, result.exited, result.rejected)
    atm.save_counters()
    paid = result.amount(atm.denominations)
    atm.journal.record("dispense", stan=record.stan, requested=record.amount, dispensed=paid,
                       exited=list(result.exited), rejected=list(result.rejected),
                       error=result.error.name)
    if not result.complete:
        await _clear_jam(atm)
    if paid == 0:
        return _dispense_failed(atm, record)
    await atm.show("take_cash")
    if await _retracted(atm, result):
        return _dispense_failed(atm, record)
    record.dispensed = paid
    if paid == record.amount:
        atm.complete(record, paid)
    else:
        record.outcome = "partial"
        atm.reverse(record, "32", dispensed=paid)
        await atm.show("partial_dispense", amount=format_amount(paid, atm.language))
    return Event.DISPENSED


async def _retracted(atm: FlowHost, result: DispenseResult) -> bool:
    """Wait for the customer to take the notes; True when they were retracted instead."""
    try:
        retracted = await atm.devices.dispenser.present(
            take_timeout_seconds=atm.config.cash_take_timeout_s)
    except DriverError as exc:
        atm.journal.record("present_failed", reason=str(exc))
        return False  # the notes were out: treat them as taken, the reversal is not proven
    if not retracted:
        atm.journal.record("cash_taken")
        return False
    atm.counters.record_retract(result.exited)
    atm.save_counters()
    atm.journal.record("cash_retracted", notes=retracted)
    return True


async def _clear_jam(atm: FlowHost) -> None:
    try:
        await atm.devices.dispenser.purge()
    except DriverError as exc:
        atm.journal.record("purge_failed", reason=str(exc))


def _dispense_failed(atm: FlowHost, record: TransactionRecord) -> Event:
    record.outcome = "dispense_failed"
    record.dispensed = 0
    atm.reverse(record, "22")
    return Event.DISPENSE_FAILED


# -- deposit ----------------------------------------------------------------------------------
async def deposit_inserting(atm: FlowHost) -> Event:
    session = atm.current_session()
    notes = await atm.customer.insert_notes(atm.screen("deposit_insert", options=("cancel",)))
    if notes is None:
        _return_escrow(atm)
        return Event.CANCELLED
    accepted = [note for note in notes if note in atm.config.accepted_notes_minor]
    room = atm.config.deposit_notes_max - len(session.escrow)
    session.escrow += accepted[:room]
    session.deposit_rejected = len(notes) - len(accepted[:room])
    atm.journal.record("deposit_counted", accepted=len(accepted[:room]),
                       returned=session.deposit_rejected, escrow_amount=sum(session.escrow))
    return Event.NOTES_COUNTED


async def deposit_confirming(atm: FlowHost) -> Event:
    session = atm.current_session()
    answer = await atm.choose(atm.screen(
        "deposit_confirm", options=("add_more", "confirm", "cancel"),
        amount=format_amount(sum(session.escrow), atm.language),
        rejected=str(session.deposit_rejected)))
    if answer == "add_more":
        return Event.ADD_MORE
    if answer == "confirm" and session.escrow:
        return Event.CONFIRMED
    _return_escrow(atm)
    return Event.CANCELLED


async def deposit_authorizing(atm: FlowHost) -> Event:
    session = atm.current_session()
    event = await atm.authorize("deposit", "210000", sum(session.escrow))
    record = session.current
    if event is not Event.APPROVED or record is None:
        _return_escrow(atm)
        return event
    for note in session.escrow:
        atm.deposits_stored[note] = atm.deposits_stored.get(note, 0) + 1
    atm.journal.record("deposit_stored", amount=record.amount, notes=len(session.escrow))
    session.escrow = []
    atm.complete(record, record.amount)
    record.balances = _balances(atm)
    return event


def _return_escrow(atm: FlowHost) -> None:
    session = atm.current_session()
    if session.escrow:
        atm.journal.record("deposit_returned", notes=len(session.escrow),
                           amount=sum(session.escrow))
        if session.current is not None:
            session.current.deposit_notes_returned = len(session.escrow)
    session.escrow = []


# -- transfer ---------------------------------------------------------------------------------
async def transfer_payee(atm: FlowHost) -> Event:
    answer = await atm.choose(atm.screen("transfer_payee", options=("cancel",),
                                         accepts_input=True))
    if not answer or answer == "cancel" or not _is_account(answer):
        return Event.CANCELLED
    atm.current_session().payee_account = answer
    return Event.PAYEE_ENTERED


def _is_account(text: str) -> bool:
    """Spec 2 field 103: ans..28; the simulator takes printable ASCII without spaces."""
    return 0 < len(text) <= account_chars_max and text.isascii() and text.isprintable() and (
        " " not in text)


async def transfer_name_inquiry(atm: FlowHost) -> Event:
    session = atm.current_session()
    event = await atm.authorize("payee_name_inquiry", "390000", 0, with_pin=False,
                                to_account=session.payee_account)
    if event is Event.APPROVED and session.current is not None:
        try:
            session.payee_name = replies.payee_name(_response(atm))
        except replies.ReplyFormatError:
            session.current.outcome, session.current.response_code = "bad_reply", "96"
            return Event.DECLINED
        session.current.payee_name = session.payee_name
    return event


async def transfer_confirming_payee(atm: FlowHost) -> Event:
    session = atm.current_session()
    answer = await atm.choose(atm.screen("transfer_confirm_payee", options=("confirm", "cancel"),
                                         payee=session.payee_name,
                                         account=session.payee_account or ""))
    return Event.CONFIRMED if answer == "confirm" else Event.CANCELLED


async def transfer_amount(atm: FlowHost) -> Event:
    amount = await _ask_amount(atm, "transfer_amount", ())
    if amount is None:
        return Event.CANCELLED
    atm.current_session().pending_amount = amount
    return Event.AMOUNT_CHOSEN


async def transfer_authorizing(atm: FlowHost) -> Event:
    session = atm.current_session()
    event = await atm.authorize("transfer", "400000", session.pending_amount,
                                to_account=session.payee_account)
    if event is Event.APPROVED and session.current is not None:
        session.current.payee_name = session.payee_name
        session.current.balances = _balances(atm)
    return event


# -- inquiries --------------------------------------------------------------------------------
async def balance_inquiry(atm: FlowHost) -> Event:
    event = await atm.authorize("balance", "310000", 0)
    record = atm.current_session().current
    if event is Event.APPROVED and record is not None:
        record.balances = _balances(atm)
    return event


async def showing_balance(atm: FlowHost) -> Event:
    record = atm.current_session().current
    balances = record.balances if record and record.balances else {"ledger": 0, "available": 0}
    await atm.choose(atm.screen(
        "balance", options=("ok",),
        ledger=format_amount(balances["ledger"], atm.language),
        available=format_amount(balances["available"], atm.language)))
    return Event.ACKNOWLEDGED


async def mini_statement(atm: FlowHost) -> Event:
    event = await atm.authorize("mini_statement", "380000", 0)
    record = atm.current_session().current
    if event is Event.APPROVED and record is not None:
        try:
            lines = replies.statement(_response(atm))
        except replies.ReplyFormatError:
            lines = []
        record.statement = [{"date": line.date, "direction": line.direction,
                             "amount": line.amount, "description": line.description}
                            for line in lines]
    return event


# -- PIN change -------------------------------------------------------------------------------
async def pin_change_new(atm: FlowHost) -> Event:
    await atm.show("new_pin")
    block = await atm.enter_pin("new_pin")
    if block is None:
        return Event.CANCELLED
    atm.current_session().new_pin_block = block
    return Event.PIN_ENTERED


async def pin_change_confirm(atm: FlowHost) -> Event:
    """Format 0 under one TPK and one PAN is deterministic: equal PINs give equal blocks."""
    session = atm.current_session()
    await atm.show("confirm_new_pin")
    block = await atm.enter_pin("confirm_new_pin")
    if block is None:
        return Event.CANCELLED
    if block != session.new_pin_block:
        session.pin_mismatches += 1
        atm.journal.record("pin_change_mismatch", attempt=session.pin_mismatches)
        await atm.show("pins_differ")
        if session.pin_mismatches >= pin_change_mismatches_max:
            session.pin_mismatches = 0
            return Event.CANCELLED
        return Event.PINS_DIFFER
    session.pin_mismatches = 0
    return Event.PIN_ENTERED


async def pin_change_authorizing(atm: FlowHost) -> Event:
    session = atm.current_session()
    new_block = session.new_pin_block or ""
    event = await atm.authorize("pin_change", "900000", 0, tags={"NP": new_block})
    if event is Event.APPROVED:
        session.pin_block = new_block  # the old PIN stopped working (spec 5.2)
    session.new_pin_block = None
    return event


def _response(atm: FlowHost) -> Message:
    if atm.last_response is None:
        raise replies.ReplyFormatError("no response")
    return atm.last_response


def _balances(atm: FlowHost) -> dict[str, int] | None:
    try:
        found = replies.balances(_response(atm))
    except replies.ReplyFormatError:
        return None
    return None if found is None else {"ledger": found.ledger, "available": found.available}
