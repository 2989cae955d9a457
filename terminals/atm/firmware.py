"""The ATM firmware: runs the state table of :mod:`terminals.atm.states` against real drivers.

One handler per state does that state's work and returns an event; the table picks the next
state. This module holds the session-level states (card, language, PIN, menu, receipt, card
return) and the host conversation shared by every transaction; the transaction states live in
:mod:`terminals.atm.flows`. Everything a customer or the host does is journaled (masked).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from switch.protocol.message import Message
from terminals.atm import flows
from terminals.atm.chip import (
    ARC_UNABLE_TO_GO_ONLINE,
    ChipError,
    ChipReader,
    field55,
    issuer_authentication_data,
    terminal_data,
)
from terminals.atm.config import AtmConfig
from terminals.atm.devices import AtmDevices
from terminals.atm.receipts import receipt_lines
from terminals.atm.replies import screen_text
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
from terminals.emv.apdu import CryptogramType
from terminals.hostlink.financial import (
    CardData,
    TerminalIdentity,
    chip_request_fields,
    completion_advice,
    financial_request,
    reversal_advice,
)
from terminals.hostlink.link import HostLink, HostUnavailable, NoResponse
from terminals.journal import REPLENISHED_EVENT, CashUnit, CassetteCounters, Journal

Handler = Callable[[], Awaitable[Event]]
# Transactions with a ledger effect: a 0200 of these that got no answer is reversed (spec 5.4).
REVERSIBLE = frozenset({"withdrawal", "deposit", "transfer"})
RETAIN_CODES = frozenset({"41", "43"})
SUSPECTED_FRAUD = "59"  # spec 6/11: chip cryptogram failed or replayed; return the card
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

    # -- the host conversation ---------------------------------------------------------
    async def authorize(self, kind: str, processing_code: str, amount: int, *,
                        with_pin: bool = True, to_account: str | None = None,
                        tags: dict[str, str] | None = None) -> Event:
        """Send a 0200 for the current session and turn the answer into an event."""
        session = self.current_session()
        now = dt.datetime.now(dt.UTC)
        fields = financial_request(
            self.identity, CardData(session.pan, session.expiry), stan=self.link.next_stan(),
            processing_code=processing_code, amount_minor=amount, now=now,
            pin_block=session.pin_block if with_pin else None, currency=self.config.currency,
            to_account=to_account, tags={"LG": session.language, **(tags or {})})
        fields["35"] = session.track2  # the card's own track 2, as read
        record = TransactionRecord(kind, amount, stan=fields["11"], rrn=fields["37"],
                                   payee_account=to_account)
        session.current = record
        session.transactions.append(record)
        await self.show("please_wait")
        if session.chip is not None:
            try:
                fields = await self._chip_request(fields, processing_code, amount, now)
            except ChipError as exc:
                record.outcome = "chip_error"
                self.journal.record("chip_failed", step="first_generate_ac", reason=str(exc))
                await self.show("card_unreadable")
                return Event.CHIP_ERROR
        session.request_fields = fields
        self.journal.record("transaction_request", type=kind, amount=amount, stan=record.stan,
                            rrn=record.rrn, pan=session.pan, entry=session.entry_mode)
        try:
            response = await self.link.authorize(fields)
        except HostUnavailable:
            await self._chip_offline_end()
            return await self._host_unavailable(record, reverse=False)
        except NoResponse:
            await self._chip_offline_end()
            return await self._host_unavailable(record, reverse=kind in REVERSIBLE)
        event = self._classify(record, response)
        if session.chip is not None:
            event = await self._chip_second_ac(record, response, event)
        if event is Event.RETURN_CARD:
            await self.show("declined", code=SUSPECTED_FRAUD, text=record.text)
        return event

    # -- the chip's part of the host conversation (spec 11) ------------------------------
    async def _chip_request(self, fields: dict[str, str], processing_code: str, amount: int,
                            now: dt.datetime) -> dict[str, str]:
        """First GENERATE AC with this transaction's data; the 0200 gets 22, 23, 35, 55."""
        app = self.current_session().chip
        if app is None:
            raise ChipError("no chip in this session")
        terminal = terminal_data(processing_code=processing_code, amount_minor=amount,
                                 currency=self.config.currency, now=now)
        await ChipReader(self.devices.card_reader).first_generate_ac(app, terminal)
        return chip_request_fields(fields, track2=app.track2, psn=app.psn,
                                   icc_data_hex=field55(app))

    async def _chip_second_ac(self, record: TransactionRecord, response: Message,
                              event: Event) -> Event:
        """Give the card the host's ARPC. After a 00 the card must return a TC, or the
        terminal pays nothing and reverses with 22 (spec 11)."""
        app = self.current_session().chip
        if app is None:
            return event
        approved = record.response_code == "00"
        arc = (record.response_code or "").encode("ascii")[:2].ljust(2, b"0")
        try:
            result = await ChipReader(self.devices.card_reader).second_generate_ac(
                app, arc=arc, issuer_auth=issuer_authentication_data(response.fields.get("55")),
                approve=approved)
        except ChipError as exc:
            self.journal.record("chip_failed", step="second_generate_ac", reason=str(exc))
            result = None
        record.cryptogram = result.name if result is not None else "none"
        self.journal.record("chip_second_ac", stan=record.stan, cryptogram=record.cryptogram)
        if not approved or result is CryptogramType.TC:
            return event
        record.outcome = "card_declined"
        record.text = " ".join(self.screen("card_declined").lines)
        if record.type in REVERSIBLE:
            self.reverse(record, "22")
        return Event.DECLINED

    async def _chip_offline_end(self) -> None:
        """No answer from the host: the card ends the transaction with an AAC (ARC Z3)."""
        app = self.current_session().chip
        if app is None:
            return
        try:
            await ChipReader(self.devices.card_reader).second_generate_ac(
                app, arc=ARC_UNABLE_TO_GO_ONLINE, issuer_auth=None, approve=False)
        except ChipError as exc:
            self.journal.record("chip_failed", step="second_generate_ac", reason=str(exc))

    async def _host_unavailable(self, record: TransactionRecord, *, reverse: bool) -> Event:
        record.outcome = "no_response" if reverse else "host_unavailable"
        self.journal.record("transaction_no_response", type=record.type, stan=record.stan)
        if reverse:
            self.reverse(record, "68")
        await self.show("host_unavailable")
        return Event.HOST_UNAVAILABLE

    def _classify(self, record: TransactionRecord, response: Message) -> Event:
        code = response.response_code or ""
        record.response_code = code
        record.auth_id = response.fields.get("38", "")
        record.text = screen_text(response)
        self.last_response = response
        self.journal.record("transaction_response", type=record.type, stan=record.stan,
                            response_code=code, auth_id=record.auth_id)
        if code == "00":
            record.outcome = "approved"
            return Event.APPROVED
        record.outcome = "declined"
        if code == "55":
            self.current_session().wrong_pin = True
            return Event.WRONG_PIN
        if code in RETAIN_CODES or (code == "75" and self.config.retain_card_on_75):
            return Event.RETAIN_CARD
        if code == SUSPECTED_FRAUD:
            return Event.RETURN_CARD
        return Event.DECLINED

    def reverse(self, record: TransactionRecord, reason: str, dispensed: int | None = None
                ) -> None:
        """Queue a 0420 for the current transaction (store-and-forward)."""
        fields = reversal_advice(self.current_session().request_fields,
                                 stan=self.link.next_stan(), now=dt.datetime.now(dt.UTC),
                                 reason=reason, dispensed_minor=dispensed)
        record.reversal_reason = reason
        self.link.queue_advice("0420", fields, type=record.type, amount=record.amount,
                               reason=reason, settled=dispensed or 0, original_stan=record.stan)

    def complete(self, record: TransactionRecord, amount: int) -> None:
        """Queue a 0220 with the final amount (store-and-forward)."""
        fields = completion_advice(self.current_session().request_fields,
                                   stan=self.link.next_stan(), now=dt.datetime.now(dt.UTC),
                                   final_amount_minor=amount)
        record.completion_amount = amount
        self.link.queue_advice("0220", fields, type=record.type, amount=record.amount,
                               settled=amount, original_stan=record.stan)

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
