"""Chaos-drill terminals and the money check: what ATMs were told versus what the ledger did.

Used by the failover drill (loadtest/failover.py) and the HAProxy node-kill test. Each
:class:`DrillAtm` behaves like a real ATM's host link: sign on, exchange keys, withdraw,
then complete (0220) or reverse (0420) what was approved; whatever got no answer or ``91``
is reversed; an advice is repeated (0221/0421) until answered ``00``. When its
connection breaks it reconnects to the next address (another node, or the same load
balancer) and first settles what it still owes. Its :class:`Record` list is the
terminal side of the books; :func:`audit` compares it with the ledger.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Callable, Sequence
from typing import Any

import trio

from loadtest.population import Terminal
from switch.db.runtime import Database
from switch.protocol.message import Message
from terminals.hostlink.connection import HostConnection, HostLinkError
from terminals.hostlink.financial import (
    CardData,
    TerminalIdentity,
    completion_advice,
    encode_request,
    financial_request,
    reversal_advice,
)
from terminals.hostlink.keys import TerminalKeySet

RESPONSE_TIMEOUT_S = 8.0
RECONNECT_PAUSE_S = 0.2
SETTLE_TIMEOUT_S = 90.0
WITHDRAWAL_MINOR = 10_000
CARD_EXPIRY = "3012"


@dataclasses.dataclass
class Record:
    """One 0200 as the terminal saw it, and how it ended."""

    terminal_id: str
    stan: str
    transmission_dt: str
    acquirer_id: str
    account_id: str
    amount: int
    sent_at: float
    answer: str | None = None  # field 39, or None when no answer came
    answered_at: float | None = None
    wants_reversal: bool = False
    settled: str | None = None  # "captured" or "reversed" once the advice was answered 00
    original: dict[str, str] = dataclasses.field(default_factory=dict)
    advice: dict[str, str] | None = None  # built once, then repeated unchanged (0221/0421)
    advice_sent: bool = False

    @property
    def acknowledged(self) -> bool:
        return self.answer == "00"

    @property
    def owes_advice(self) -> bool:
        """Approved (complete or reverse it), or no/``91`` answer (reverse it to be safe)."""
        return self.settled is None and (self.answer in (None, "00", "91"))


class ConnectionLost(Exception):
    """The host link broke or went silent; reconnect and settle."""


class DrillAtm:
    """One terminal: withdrawals with completions and some reversals, across reconnects."""

    def __init__(self, terminal: Terminal, addresses: Callable[[], Sequence[tuple[str, int]]],
                 *, seed: int, reversal_share: float = 0.2, pause_s: float = 0.05) -> None:
        self.terminal = terminal
        self.addresses = addresses
        self.identity = TerminalIdentity(terminal.terminal_id)
        self.card = CardData(terminal.pan, CARD_EXPIRY)
        self.rng = random.Random(seed)
        self.reversal_share = reversal_share
        self.pause_s = pause_s
        self.records: list[Record] = []
        self.connects = 0
        self.failures = 0
        self._link: HostConnection | None = None
        self._keys = TerminalKeySet.from_tmk_hex(terminal.tmk.hex().upper())
        self._tmk_keys = self._keys
        self._stan = self.rng.randrange(1, 900_000)
        self._next_address = seed

    def _next_stan(self) -> str:
        self._stan = self._stan % 999_999 + 1
        return f"{self._stan:06d}"

    async def run(self, stop: trio.Event) -> None:
        """Transact until ``stop``; then settle everything owed (reconnecting as needed)."""
        while not stop.is_set():
            await self._session(stop, settle_only=False)
        with trio.move_on_after(SETTLE_TIMEOUT_S):  # audit() reports what stayed unsettled
            while any(r.owes_advice for r in self.records):
                await self._session(stop, settle_only=True)

    async def _session(self, stop: trio.Event, *, settle_only: bool) -> None:
        failures = self.failures
        try:
            async with trio.open_nursery() as nursery:
                try:
                    await self._connect(nursery)
                    await self._settle()
                    while not settle_only and not stop.is_set():
                        await self._transaction()
                        await trio.sleep(self.pause_s)
                finally:
                    if self._link is not None:
                        await self._link.aclose()
                        self._link = None
                    nursery.cancel_scope.cancel()
        except* (ConnectionLost, OSError, HostLinkError):
            self.failures += 1  # the connection or node is gone: reconnect after a pause
        if self.failures != failures:
            await trio.sleep(RECONNECT_PAUSE_S)

    async def _connect(self, nursery: trio.Nursery) -> None:
        addresses = list(self.addresses())
        address = addresses[self._next_address % len(addresses)]
        self._next_address += 1
        stream = await trio.open_tcp_stream(*address)
        link = HostConnection(stream, terminal_id=self.terminal.terminal_id,
                              first_stan=self._stan + 1, response_timeout_s=RESPONSE_TIMEOUT_S)
        link.check_response = self._check_mac
        self._link = link
        nursery.start_soon(link.run_reader)
        self._stan += 2  # the link numbers its 0800s from first_stan
        signed = await link.network_request("001")
        if signed.fields.get("39") != "00":
            raise ConnectionLost(f"sign-on answered {signed.fields.get('39')}")
        exchanged = await link.network_request("161")
        if exchanged.fields.get("39") != "00":
            raise ConnectionLost(f"key exchange answered {exchanged.fields.get('39')}")
        self._keys = self._tmk_keys.after_key_exchange(exchanged.fields)
        self.connects += 1

    async def _check_mac(self, message: Message, raw: bytes) -> None:
        if self._keys.tak is not None and not message.mti.startswith("08"):
            if message.fields.get("39") not in ("30", "58", "63"):
                self._keys.verify_response_mac(raw)

    async def _send(self, mti: str, fields: dict[str, str]) -> Message:
        link = self._link
        if link is None:
            raise ConnectionLost("not connected")
        try:
            return await link.request_encoded(encode_request(mti, fields, self._keys))
        except HostLinkError as exc:
            raise ConnectionLost(str(exc)) from exc

    async def _transaction(self) -> None:
        now = dt.datetime.now(dt.UTC)
        fields = financial_request(
            self.identity, self.card, stan=self._next_stan(), processing_code="010000",
            amount_minor=WITHDRAWAL_MINOR, now=now,
            pin_block=self._keys.pin_block(self.terminal.pin, self.terminal.pan),
        )
        record = Record(self.terminal.terminal_id, fields["11"], fields["7"], fields["32"],
                        self.terminal.account_id, WITHDRAWAL_MINOR, trio.current_time(),
                        original=fields, wants_reversal=self.rng.random() < self.reversal_share)
        self.records.append(record)
        response = await self._send("0200", fields)
        record.answer = response.fields.get("39")
        record.answered_at = trio.current_time()
        if record.owes_advice:
            await self._settle_one(record)

    def _advice_for(self, record: Record) -> dict[str, str]:
        now = dt.datetime.now(dt.UTC)
        if record.acknowledged and not record.wants_reversal:
            return completion_advice(record.original, stan=self._next_stan(), now=now)
        reason = "22" if record.acknowledged else "68"  # 22: dispense failed; 68: no answer
        return reversal_advice(record.original, stan=self._next_stan(), now=now, reason=reason)

    async def _settle(self) -> None:
        for record in self.records:
            if record.owes_advice:
                await self._settle_one(record)

    async def _settle_one(self, record: Record) -> None:
        if record.advice is None:
            record.advice = self._advice_for(record)
        completion = record.acknowledged and not record.wants_reversal
        first, repeat = ("0220", "0221") if completion else ("0420", "0421")
        while True:
            response = await self._send(repeat if record.advice_sent else first, record.advice)
            record.advice_sent = True
            if response.fields.get("39") == "00":
                record.settled = "captured" if completion else "reversed"
                return
            await trio.sleep(0.3)


async def audit(db: Database, atms: Sequence[DrillAtm], *, initial_balance: int,
                kill_at: float | None = None) -> dict[str, Any]:
    """Terminals' records versus the ledger: lost, duplicated, held, and the money."""
    records = [r for atm in atms for r in atm.records]
    # The engine records each approved 0200's hold on its message row (its holds carry
    # no ledger idempotency key: docs/authorization.md, "Write set").
    holds = {
        (row["terminal_id"], row["stan"], row["transmission_dt"]): row
        for row in await db.fetch(
            "SELECT m.terminal_id, m.stan, m.transmission_dt, h.hold_id, h.state, h.amount,"
            " h.captured_amount FROM auth_messages m JOIN ledger_holds h USING (hold_id)"
            " WHERE m.message_class = '0200'"
        )
    }
    lost = mismatched = 0
    told_captured = 0
    for record in records:
        hold = holds.get((record.terminal_id, record.stan, record.transmission_dt))
        if record.acknowledged and hold is None:
            lost += 1
            continue
        if record.settled == "captured":
            told_captured += record.amount
            if hold is None or hold["state"] != "captured" or hold["captured_amount"] != (
                record.amount
            ):
                mismatched += 1
        elif hold is not None and hold["state"] == "captured" and hold["captured_amount"]:
            mismatched += 1  # money taken although the terminal reversed (or never was told)
    ours = {(r.terminal_id, r.stan, r.transmission_dt) for r in records}
    unknown_holds = sum(1 for key in holds if key not in ours)
    double_captures = await db.fetchval(
        "SELECT count(*) FROM (SELECT hold_id FROM ledger_entries WHERE kind = 'capture'"
        " GROUP BY hold_id HAVING count(*) > 1) d"
    )
    accounts = sorted({atm.terminal.account_id for atm in atms})
    balance_rows = await db.fetch(
        "SELECT account_id, sum(amount)::bigint AS balance FROM ledger_legs"
        " WHERE account_id = ANY($1::text[]) GROUP BY account_id", accounts,
    )
    ledger_delta = sum(initial_balance - int(row["balance"]) for row in balance_rows)
    held_at_end = await db.fetchval("SELECT count(*) FROM ledger_holds WHERE state = 'open'")
    downtime = None
    if kill_at is not None:
        after = [r.answered_at for r in records
                 if r.acknowledged and r.answered_at and r.sent_at >= kill_at]
        downtime = round(min(after) - kill_at, 3) if after else None
    return {
        "acknowledged": sum(1 for r in records if r.acknowledged),
        "lost_acknowledged": lost,
        "duplicated": int(double_captures) + mismatched + unknown_holds,
        "held_at_end": int(held_at_end),
        "downtime_s": downtime,
        "requests": len(records),
        "unanswered": sum(1 for r in records if r.answer is None),
        "answered_91": sum(1 for r in records if r.answer == "91"),
        "captured": sum(1 for r in records if r.settled == "captured"),
        "reversed": sum(1 for r in records if r.settled == "reversed"),
        "money_exact": ledger_delta == told_captured,
        "ledger_debited_minor": ledger_delta,
        "terminals_captured_minor": told_captured,
        "unsettled": sum(1 for r in records if r.owes_advice),
        "reconnects": sum(max(atm.connects - 1, 0) for atm in atms),
    }
