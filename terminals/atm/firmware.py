"""The ATM firmware: runs the state table of :mod:`terminals.atm.states` against real drivers.

One handler per state does that state's work and returns an event; the table picks the next
state. This module holds the loop, the customer's screens and PIN entry, the cassette counters
and the session-level states (card, language, PIN, menu, receipt, card return). The transaction
states live in :mod:`terminals.atm.flows`, the host conversation they share (0200, chip,
0220/0420) in :mod:`terminals.atm.host_conversation`. Everything a customer or the host does is
journaled (masked).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from switch.protocol.message import Message
from terminals.atm import flows, host_conversation
from terminals.atm.chip import ChipError, ChipReader
from terminals.atm.config import AtmConfig
from terminals.atm.devices import AtmDevices
from terminals.atm.receipts import receipt_lines
from terminals.atm.screens import LANGUAGES, MENU_LABELS, Screen, screen
from terminals.atm.session import (
    Customer,
    CustomerSession,
    TransactionRecord,
    is_chip_service_code,
    parse_track2,
)
from terminals.atm.states import Event, State, next_state
from terminals.drivers.errors import DeviceFault, DriverError
from terminals.drivers.pinpad import PinEntryCancelled, PinEntryTimeout
from terminals.hostlink.financial import TerminalIdentity
from terminals.hostlink.link import HostLink
from terminals.journal import REPLENISHED_EVENT, CashUnit, CassetteCounters, Journal

Handler = Callable[[], Awaitable[Event]]
CARD_READER_READ_ERROR = "20"
CARD_READER_NO_ATR = "60"
_MENU_EVENTS = {
    "withdrawal": Event.SELECTED_WITHDRAWAL,
    "deposit": Event.SELECTED_DEPOSIT,
    "transfer": Event.SELECTED_TRANSFER,
    "balance": Event.SELECTED_BALANCE,
    "mini_statement": Event.SELECTED_MINI_STATEMENT,
    "pin_change": Event.SELECTED_PIN_CHANGE,
}


class AtmFirmware:
    """One ATM: devices, host link, customer, journal, cassette counters."""

    def __init__(self, config: AtmConfig, devices: AtmDevices, link: HostLink,
                 customer: Customer, journal: Journal, data_dir: Path) -> None:
        self.config = config
        self.devices = devices
        self.link = link
        self.customer = customer
        self.journal = journal
        self.identity = TerminalIdentity(config.terminal_id, config.acquirer_id,
                                         config.card_acceptor_id, config.name_location)
        self.state = State.IDLE
        self.session: CustomerSession | None = None
        self.completed_sessions: list[dict[str, Any]] = []
        self.counters = CassetteCounters()
        self.denominations: list[int] = []
        self.deposits_stored: dict[int, int] = {}
        self.last_response: Message | None = None
        self._counters_path = data_dir / "counters.json"
        self._stop_when_idle = False
        self._progress = trio.Event()
        self._handlers: dict[State, Handler] = {
            State.IDLE: self._idle,
            State.READING_CARD: self._reading_card,
            State.CHOOSING_LANGUAGE: self._choosing_language,
            State.ENTERING_PIN: self._entering_pin,
            State.MENU: self._menu,
            State.PRINTING_RECEIPT: self._printing_receipt,
            State.SHOWING_DECLINE: self._showing_decline,
            State.ANOTHER_TRANSACTION: self._another_transaction,
            State.RETURNING_CARD: self._returning_card,
            State.RETAINING_CARD: self._retaining_card,
            **flows.handlers(self),
        }

    # -- life cycle --------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the devices, wait for the host, then serve customers until stopped."""
        await self.start_devices()
        if not await self.link.wait_ready(self.config.host_ready_timeout_s):
            self.journal.record("host_not_ready_at_start")
        task_status.started()
        while self.state is not State.STOPPED:
            event = await self._handlers[self.state]()
            new_state = next_state(self.state, event)
            self.state = new_state
            self._progress.set()
            self._progress = trio.Event()

    async def start_devices(self) -> None:
        devices = self.devices
        await devices.card_reader.initialise(card_action="capture")
        info = await devices.dispenser.cassette_info()
        self.denominations = [cassette.denomination for cassette in info]
        self.counters = self._load_counters(info)
        printer = await devices.printer.status()
        pinpad = await devices.pinpad.status()
        self.journal.record("atm_started", cassettes=self.counters.snapshot(),
                            printer_online=printer.online, paper_near_end=printer.paper_near_end,
                            tmk_loaded=pinpad.tmk_loaded)

    def stop_when_idle(self) -> None:
        """Finish the current customer, then stop (the IDLE state ends the run)."""
        self._stop_when_idle = True

    async def wait_sessions(self, count: int) -> None:
        """Sleep until ``count`` card sessions have ended."""
        while len(self.completed_sessions) < count:
            await self._progress.wait()

    # -- helpers for handlers ----------------------------------------------------------
    @property
    def language(self) -> str:
        return self.session.language if self.session else "en"

    def current_session(self) -> CustomerSession:
        if self.session is None:
            raise RuntimeError(f"state {self.state} needs a card session")
        return self.session

    def screen(self, screen_name: str, *, options: tuple[str, ...] = (),
               accepts_input: bool = False, **values: str) -> Screen:
        return screen(screen_name, self.language, options=options, accepts_input=accepts_input,
                      **values)

    async def show(self, screen_name: str, **values: str) -> None:
        await self.customer.show(self.screen(screen_name, options=(), accepts_input=False,
                                             **values))

    async def choose(self, shown: Screen) -> str | None:
        """The customer's answer, or None when they do not answer in time."""
        with trio.move_on_after(self.config.customer_timeout_s):
            return await self.customer.choose(shown)
        return None

    async def enter_pin(self, purpose: str) -> str | None:
        """A PIN block from the EPP (format 0 under the TPK), or None if cancelled/timed out."""
        session = self.current_session()
        await self.customer.prepare_pin(purpose)
        try:
            return await self.devices.pinpad.enter_pin(
                session.pan, length_min=self.config.pin_length_min,
                length_max=self.config.pin_length_max, timeout_seconds=self.config.pin_timeout_s)
        except (PinEntryCancelled, PinEntryTimeout) as exc:
            self.journal.record("pin_entry_ended", purpose=purpose, reason=type(exc).__name__)
            return None

    # -- the host conversation (terminals.atm.host_conversation) ------------------------
    async def authorize(self, kind: str, processing_code: str, amount: int, *,
                        with_pin: bool = True, to_account: str | None = None,
                        tags: dict[str, str] | None = None) -> Event:
        """Send a 0200 for the current session and turn the answer into an event."""
        return await host_conversation.authorize(self, kind, processing_code, amount,
                                                 with_pin=with_pin, to_account=to_account,
                                                 tags=tags)

    def reverse(self, record: TransactionRecord, reason: str, dispensed: int | None = None
                ) -> None:
        """Queue a 0420 for the current transaction (store-and-forward)."""
        host_conversation.reverse(self, record, reason, dispensed)

    def complete(self, record: TransactionRecord, amount: int) -> None:
        """Queue a 0220 with the final amount (store-and-forward)."""
        host_conversation.complete(self, record, amount)

    # -- session states ----------------------------------------------------------------
    async def _idle(self) -> Event:
        await self.show("welcome")
        while not self._stop_when_idle:
            if not self.link.ready:  # out of service while the host is unreachable
                await self.link.wait_ready(self.config.card_wait_poll_s)
                continue
            if await self.devices.card_reader.wait_for_card(self.config.card_wait_poll_s):
                return Event.CARD_INSERTED
        return Event.SHUTDOWN

    async def _reading_card(self) -> Event:
        """Chip first: a card with a working chip is read from it; a card whose service code
        says chip but whose chip gives no ATR is refused (spec 11: no fallback)."""
        if self.config.chip_reader:
            chip_event = await self._reading_chip()
            if chip_event is not None:
                return chip_event
        try:
            track2 = await self.devices.card_reader.read_track2()
            pan, expiry = parse_track2(track2)
        except DeviceFault as exc:
            self.journal.record("card_read_failed", code=exc.code)
            if exc.code != CARD_READER_READ_ERROR:
                return await self._capture_jammed_card()
            await self.show("card_unreadable")
            return Event.CARD_UNREADABLE
        except (DriverError, ValueError) as exc:
            self.journal.record("card_read_failed", reason=type(exc).__name__)
            await self.show("card_unreadable")
            return Event.CARD_UNREADABLE
        if self.config.chip_reader and is_chip_service_code(track2):
            self.journal.record("card_read_failed", reason="chip card without a working chip")
            await self.show("card_unreadable")
            return Event.CARD_UNREADABLE
        self.session = CustomerSession(track2, pan, expiry)
        self.journal.record("card_inserted", track2=track2, entry="stripe")
        return Event.CARD_READ

    async def _reading_chip(self) -> Event | None:
        """The session from the chip; None when the card gives no ATR (read the stripe)."""
        reader = self.devices.card_reader
        try:
            await reader.activate_chip()
        except DeviceFault as exc:
            if exc.code == CARD_READER_NO_ATR:
                return None
            self.journal.record("card_read_failed", code=exc.code)
            return await self._capture_jammed_card()
        except DriverError as exc:
            self.journal.record("card_read_failed", reason=type(exc).__name__)
            await self.show("card_unreadable")
            return Event.CARD_UNREADABLE
        try:
            app = await ChipReader(reader).open()
            pan, expiry = parse_track2(app.track2)
        except (ChipError, ValueError) as exc:
            self.journal.record("chip_failed", step="read", reason=str(exc))
            await self.show("card_unreadable")
            return Event.CARD_UNREADABLE
        self.session = CustomerSession(app.track2, pan, expiry, chip=app)
        self.journal.record("card_inserted", track2=app.track2, entry="chip", psn=app.psn)
        return Event.CARD_READ

    async def _capture_jammed_card(self) -> Event:
        try:
            await self.devices.card_reader.initialise(card_action="capture")
        except DriverError:
            self.journal.record("card_reader_out_of_order")
        self._end_session("retained")
        return Event.CARD_RETAINED

    async def _choosing_language(self) -> Event:
        answer = await self.choose(self.screen("language", options=LANGUAGES))
        if answer not in LANGUAGES:
            return Event.CANCELLED
        self.current_session().language = answer
        self.journal.record("language_chosen", language=answer)
        return Event.LANGUAGE_CHOSEN

    async def _entering_pin(self) -> Event:
        session = self.current_session()
        await self.show("reenter_pin" if session.wrong_pin else "enter_pin")
        block = await self.enter_pin("pin")
        if block is None:
            return Event.CANCELLED
        session.pin_block, session.wrong_pin = block, False
        self.journal.record("pin_entered")
        return Event.PIN_ENTERED

    async def _menu(self) -> Event:
        answer = await self.choose(self.screen("menu", options=tuple(MENU_LABELS)))
        self.journal.record("menu_choice", choice=answer or "timeout")
        return _MENU_EVENTS.get(answer or "", Event.CANCELLED)

    async def _printing_receipt(self) -> Event:
        session = self.current_session()
        record = session.current
        if record is not None:
            lines = receipt_lines(self.config.receipt_header, self.config.terminal_id, session,
                                  record, dt.datetime.now())
            try:
                status = await self.devices.printer.print_receipt(lines)
                self.journal.record("receipt_printed", type=record.type, stan=record.stan,
                                    paper_near_end=status.paper_near_end)
                await self.show("receipt_printed")
            except DriverError as exc:
                self.journal.record("receipt_failed", type=record.type, reason=str(exc))
        return Event.RECEIPT_DONE

    async def _showing_decline(self) -> Event:
        record = self.current_session().current
        if record is not None and record.outcome == "dispense_failed":
            shown = self.screen("host_unavailable", options=("ok",))
        else:
            code = record.response_code if record else None
            shown = self.screen("declined", options=("ok",), code=code or "--",
                                text=record.text if record else "")
        await self.choose(shown)
        return Event.ACKNOWLEDGED

    async def _another_transaction(self) -> Event:
        answer = await self.choose(self.screen("another", options=("yes", "no")))
        self.current_session().current = None
        return Event.ANOTHER if answer == "yes" else Event.FINISHED

    async def _returning_card(self) -> Event:
        await self.show("take_card")
        try:
            taken = await self.devices.card_reader.return_card(
                take_timeout_seconds=self.config.card_take_timeout_s)
        except DriverError as exc:
            self.journal.record("card_return_failed", reason=str(exc))
            taken = False
        self.journal.record("card_returned" if taken else "card_not_taken_retained")
        if not taken:
            await self.show("card_retained")
        self._end_session("returned" if taken else "retained_not_taken")
        return Event.CARD_RETURNED if taken else Event.CARD_RETAINED

    async def _retaining_card(self) -> Event:
        try:
            await self.devices.card_reader.capture()
        except DriverError as exc:
            self.journal.record("card_capture_failed", reason=str(exc))
        self.journal.record("card_retained",
                            response_code=self.last_response.response_code
                            if self.last_response else None)
        await self.show("card_retained")
        self._end_session("retained")
        return Event.CARD_RETAINED

    def _end_session(self, card_outcome: str) -> None:
        if self.session is not None:
            self.session.card_outcome = card_outcome
            self.completed_sessions.append(self.session.summary())
        else:
            self.completed_sessions.append({"card": None, "card_outcome": card_outcome,
                                            "transactions": []})
        self.session = None

    # -- cassette counters -------------------------------------------------------------
    def _load_counters(self, info: Any) -> CassetteCounters:
        """The counters kept in the data directory, unless the cassettes were just filled: a
        replenishment closes the old counters (journaled) and restarts them, so cash paid out
        and the balancing report cover this load only, as on a real ATM."""
        if self._counters_path.exists() and not self.config.replenished_at_start:
            return CassetteCounters.restore(json.loads(self._counters_path.read_text()))
        counters = CassetteCounters([
            CashUnit(number, cassette.currency, cassette.denomination, initial=notes, count=notes)
            for number, (cassette, notes) in enumerate(
                zip(info, self.config.cassette_notes, strict=True), start=1)
        ])
        if self._counters_path.exists():
            closed = json.loads(self._counters_path.read_text())
            self.journal.record(REPLENISHED_EVENT, closed=closed, cassettes=counters.snapshot())
        self.save_counters(counters)
        return counters

    def save_counters(self, counters: CassetteCounters | None = None) -> None:
        counters = counters or self.counters
        self._counters_path.write_text(json.dumps(counters.snapshot(), indent=1))
