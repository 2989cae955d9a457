"""The firmware's conversation with the host for one transaction: the 0200 and its answer,
the chip's part of it (spec 11), and the advices that follow it (0220, 0420).

Every transaction state asks the host through :func:`authorize`, which turns the answer into
one event of :mod:`terminals.atm.states`; a 0200 that got no answer, or a chip that refused the
host's approval, is reversed here. These functions see the firmware only through
:class:`ConversationHost`, so this module never imports it.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from switch.protocol.message import Message
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
from terminals.atm.replies import screen_text
from terminals.atm.screens import Screen
from terminals.atm.session import CustomerSession, TransactionRecord
from terminals.atm.states import Event
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
from terminals.journal import Journal

# Transactions with a ledger effect: a 0200 of these that got no answer is reversed (spec 5.4).
REVERSIBLE = frozenset({"withdrawal", "deposit", "transfer"})
RETAIN_CODES = frozenset({"41", "43"})
SUSPECTED_FRAUD = "59"  # spec 6/11: chip cryptogram failed or replayed; return the card


class ConversationHost(Protocol):
    """The firmware's parts the host conversation uses: link, identity, card reader, screens."""

    @property
    def config(self) -> AtmConfig: ...

    @property
    def devices(self) -> AtmDevices: ...

    @property
    def link(self) -> HostLink: ...

    @property
    def identity(self) -> TerminalIdentity: ...

    @property
    def journal(self) -> Journal: ...

    # The host's last answer: written here, read by the flows and the card-retained state.
    last_response: Message | None

    def current_session(self) -> CustomerSession:
        """The card session; raises when there is none (a transaction always has one)."""

    def screen(self, screen_name: str, *, options: tuple[str, ...] = (),
               accepts_input: bool = False, **values: str) -> Screen: ...

    async def show(self, screen_name: str, **values: str) -> None: ...


async def authorize(atm: ConversationHost, kind: str, processing_code: str, amount: int, *,
                    with_pin: bool = True, to_account: str | None = None,
                    tags: dict[str, str] | None = None) -> Event:
    """Send a 0200 for the current session and turn the answer into an event."""
    session = atm.current_session()
    now = dt.datetime.now(dt.UTC)
    fields = financial_request(
        atm.identity, CardData(session.pan, session.expiry), stan=atm.link.next_stan(),
        processing_code=processing_code, amount_minor=amount, now=now,
        pin_block=session.pin_block if with_pin else None, currency=atm.config.currency,
        to_account=to_account, tags={"LG": session.language, **(tags or {})})
    fields["35"] = session.track2  # the card's own track 2, as read
    record = TransactionRecord(kind, amount, stan=fields["11"], rrn=fields["37"],
                               payee_account=to_account)
    session.current = record
    session.transactions.append(record)
    await atm.show("please_wait")
    if session.chip is not None:
        try:
            fields = await _chip_request(atm, fields, processing_code, amount, now)
        except ChipError as exc:
            record.outcome = "chip_error"
            atm.journal.record("chip_failed", step="first_generate_ac", reason=str(exc))
            await atm.show("card_unreadable")
            return Event.CHIP_ERROR
    session.request_fields = fields
    atm.journal.record("transaction_request", type=kind, amount=amount, stan=record.stan,
                       rrn=record.rrn, pan=session.pan, entry=session.entry_mode)
    try:
        response = await atm.link.authorize(fields)
    except HostUnavailable:
        await _chip_offline_end(atm)
        return await _host_unavailable(atm, record, send_reversal=False)
    except NoResponse:
        await _chip_offline_end(atm)
        return await _host_unavailable(atm, record, send_reversal=kind in REVERSIBLE)
    event = _classify(atm, record, response)
    if session.chip is not None:
        event = await _chip_second_ac(atm, record, response, event)
    if event is Event.RETURN_CARD:
        await atm.show("declined", code=SUSPECTED_FRAUD, text=record.text)
    return event


def reverse(atm: ConversationHost, record: TransactionRecord, reason: str,
            dispensed: int | None = None) -> None:
    """Queue a 0420 for the current transaction (store-and-forward)."""
    fields = reversal_advice(atm.current_session().request_fields,
                             stan=atm.link.next_stan(), now=dt.datetime.now(dt.UTC),
                             reason=reason, dispensed_minor=dispensed)
    record.reversal_reason = reason
    atm.link.queue_advice("0420", fields, type=record.type, amount=record.amount,
                          reason=reason, settled=dispensed or 0, original_stan=record.stan)


def complete(atm: ConversationHost, record: TransactionRecord, amount: int) -> None:
    """Queue a 0220 with the final amount (store-and-forward)."""
    fields = completion_advice(atm.current_session().request_fields,
                               stan=atm.link.next_stan(), now=dt.datetime.now(dt.UTC),
                               final_amount_minor=amount)
    record.completion_amount = amount
    atm.link.queue_advice("0220", fields, type=record.type, amount=record.amount,
                          settled=amount, original_stan=record.stan)


def _classify(atm: ConversationHost, record: TransactionRecord, response: Message) -> Event:
    code = response.response_code or ""
    record.response_code = code
    record.auth_id = response.fields.get("38", "")
    record.text = screen_text(response)
    atm.last_response = response
    atm.journal.record("transaction_response", type=record.type, stan=record.stan,
                       response_code=code, auth_id=record.auth_id)
    if code == "00":
        record.outcome = "approved"
        return Event.APPROVED
    record.outcome = "declined"
    if code == "55":
        atm.current_session().wrong_pin = True
        return Event.WRONG_PIN
    if code in RETAIN_CODES or (code == "75" and atm.config.retain_card_on_75):
        return Event.RETAIN_CARD
    if code == SUSPECTED_FRAUD:
        return Event.RETURN_CARD
    return Event.DECLINED


async def _host_unavailable(atm: ConversationHost, record: TransactionRecord, *,
                            send_reversal: bool) -> Event:
    record.outcome = "no_response" if send_reversal else "host_unavailable"
    atm.journal.record("transaction_no_response", type=record.type, stan=record.stan)
    if send_reversal:
        reverse(atm, record, "68")
    await atm.show("host_unavailable")
    return Event.HOST_UNAVAILABLE


# -- the chip's part of the host conversation (spec 11) --------------------------------------
async def _chip_request(atm: ConversationHost, fields: dict[str, str], processing_code: str,
                        amount: int, now: dt.datetime) -> dict[str, str]:
    """First GENERATE AC with this transaction's data; the 0200 gets 22, 23, 35, 55."""
    app = atm.current_session().chip
    if app is None:
        raise ChipError("no chip in this session")
    terminal = terminal_data(processing_code=processing_code, amount_minor=amount,
                             currency=atm.config.currency, now=now)
    await ChipReader(atm.devices.card_reader).first_generate_ac(app, terminal)
    return chip_request_fields(fields, track2=app.track2, psn=app.psn,
                               icc_data_hex=field55(app))


async def _chip_second_ac(atm: ConversationHost, record: TransactionRecord, response: Message,
                          event: Event) -> Event:
    """Give the card the host's ARPC. After a 00 the card must return a TC, or the
    terminal pays nothing and reverses with 22 (spec 11)."""
    app = atm.current_session().chip
    if app is None:
        return event
    approved = record.response_code == "00"
    arc = (record.response_code or "").encode("ascii")[:2].ljust(2, b"0")
    try:
        result = await ChipReader(atm.devices.card_reader).second_generate_ac(
            app, arc=arc, issuer_auth=issuer_authentication_data(response.fields.get("55")),
            approve=approved)
    except ChipError as exc:
        atm.journal.record("chip_failed", step="second_generate_ac", reason=str(exc))
        result = None
    record.cryptogram = result.name if result is not None else "none"
    atm.journal.record("chip_second_ac", stan=record.stan, cryptogram=record.cryptogram)
    if not approved or result is CryptogramType.TC:
        return event
    record.outcome = "card_declined"
    record.text = " ".join(atm.screen("card_declined").lines)
    if record.type in REVERSIBLE:
        reverse(atm, record, "22")
    return Event.DECLINED


async def _chip_offline_end(atm: ConversationHost) -> None:
    """No answer from the host: the card ends the transaction with an AAC (ARC Z3)."""
    app = atm.current_session().chip
    if app is None:
        return
    try:
        await ChipReader(atm.devices.card_reader).second_generate_ac(
            app, arc=ARC_UNABLE_TO_GO_ONLINE, issuer_auth=None, approve=False)
    except ChipError as exc:
        atm.journal.record("chip_failed", step="second_generate_ac", reason=str(exc))

