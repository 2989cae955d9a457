"""Play a history against the switch over real TCP and ISO 8583, and journal every answer.

Messages are built by the project's terminal helpers (``terminals.hostlink.financial``) and
sent by ``HostConnection`` with the terminal's MAC; response MACs are checked. A step's
messages go out together (a few milliseconds apart, in order), so they meet in one batch when
the database is slow. The faults and crashes of a step are driven from here.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Mapping

import trio

from terminals.hostlink.connection import HostLinkError
from terminals.hostlink.financial import (
    TerminalIdentity,
    completion_advice,
    financial_request,
    reversal_advice,
)
from tests.simulate import model
from tests.simulate.history import History, Send, Step
from tests.simulate.journal import Attempt, Journal, Sent
from tests.simulate.node import NodeConfig, SwitchNode, Terminal
from tests.simulate.observe import normal_key
from tests.simulate.pg_proxy import DbFault, FaultWindow, PgProxy
from tests.simulate.postgres import SimPostgres
from tests.simulate.world import (
    CARD_NAMES,
    CARDS,
    NEW_PINS,
    PAYEES,
    TERMINALS,
    WRONG_PIN,
    card_data,
)

log = logging.getLogger(__name__)

send_stagger_s = 0.004  # a step's messages leave in order, a few ms apart
slow_reply_s = 0.25  # db.slow: well inside the deadline, enough to fill batches
_PROCESSING = {"withdrawal": "010000", "deposit": "210000", "transfer": "400000",
               "balance": "310000", "pin_change": "900000"}
_REPEAT_MTI = {"0200": "0200", "0220": "0221", "0420": "0421"}


def _key_of(fields: Mapping[str, str]) -> model.Key:
    return normal_key(fields["41"], fields["11"], fields["7"], fields["32"])


def _original_key(advice: Mapping[str, str]) -> model.Key:
    data = advice["90"]  # MTI 4, STAN 6, field 7 10, acquirer 11
    return normal_key(advice["41"], data[4:10], data[10:20], data[20:31])


class HistoryRunner:
    def __init__(self, node: SwitchNode, postgres: SimPostgres, proxy: PgProxy,
                 config: NodeConfig, nursery: trio.Nursery) -> None:
        self.node = node
        self.postgres = postgres
        self.proxy = proxy
        self.config = config
        self.nursery = nursery
        self.journal = Journal()
        self.terminals = {t: Terminal(t, config.terminal_timeout_s) for t in TERMINALS}
        self.pins = {name: CARDS[name][2] for name in CARD_NAMES}  # what the customer believes
        self.unsent: list[tuple[dict[str, str], model.Financial]] = []
        self.crashes: Counter[str] = Counter()
        self.last_disturbance = 0.0
        self._inflight: dict[tuple[str, model.Key], trio.Event] = {}
        self._order: list[Sent] = []  # every Sent, in the order first sent

    # -- steps --------------------------------------------------------------------------------
    async def run(self, history: History) -> None:
        for step in history:
            await self.run_step(step)

    async def run_step(self, step: Step) -> None:
        if step.fault is not None:
            self._open(step.fault, step.fault_p)
        try:
            stagger_s = send_stagger_s if step.stagger_s is None else step.stagger_s
            async with trio.open_nursery() as nursery:
                for index, send in enumerate(step.sends):
                    nursery.start_soon(self._perform_later, send, index * stagger_s)
                if step.crash is not None and not step.crash_after_answers:
                    nursery.start_soon(self._crash, step.crash, step.crash_after_s)
                if step.fault is not None and step.fault_then is not None:
                    nursery.start_soon(self._then, step.fault_then, step.then_after_s)
            if step.crash is not None and step.crash_after_answers:
                await self._crash(step.crash, step.crash_after_s)
        finally:
            self.proxy.open_window(None)
        if step.pause_s:
            await trio.sleep(step.pause_s)

    def _open(self, fault: DbFault, probability: float) -> None:
        delay = slow_reply_s if fault is DbFault.SLOW else self.config.deadline_s + 0.8
        self.proxy.open_window(FaultWindow(fault, probability, delay))
        self.last_disturbance = max(self.last_disturbance, trio.current_time() + delay)

    async def _then(self, fault: DbFault, after_s: float) -> None:
        await trio.sleep(after_s)
        if self.proxy.window is not None:  # a crash closes the window for good
            self._open(fault, 1.0)

    async def _crash(self, crash: str, after_s: float) -> None:
        await trio.sleep(after_s)
        self.crashes[crash] += 1
        if crash == "kill":
            await self.node.kill()
            self.proxy.open_window(None)
            await self.node.start()
        else:
            await trio.to_thread.run_sync(self.postgres.crash)
            self.proxy.open_window(None)
            await trio.to_thread.run_sync(self.postgres.restart_after_crash)
        self.last_disturbance = trio.current_time()

    async def _perform_later(self, send: Send, delay_s: float) -> None:
        if delay_s:
            await trio.sleep(delay_s)
        await self.perform(send)

    # -- actions ------------------------------------------------------------------------------
    async def perform(self, send: Send) -> None:
        if send.action == "request":
            fields, message = self._request(send)
            await self.transmit("0200", fields, message, card=message.card)
        elif send.action in ("complete", "reverse"):
            await self._advice(send)
        elif send.action == "repeat":
            if self._order:
                sent = self._order[send.ref % len(self._order)]
                await self.transmit(sent.message_class, sent.fields, sent.model,
                                    repeat=True, card=sent.card)
        elif send.action == "conflict":
            decided = [s for s in self._order if s.message_class == "0200" and s.decided]
            if decided:
                sent = decided[send.ref % len(decided)]
                other = dict(sent.fields, **{"4": f"{int(sent.fields['4']) + 10_000:012d}"})
                await self.transmit("0200", other, sent.model, same_content=False,
                                    card=sent.card)
        elif send.action == "reverse_unknown":
            fields, message = self._request(Send("request", send.terminal, send.card,
                                                 "withdrawal", 10_000))
            self.unsent.append((fields, message))
            await self._reverse(fields, message.card, "68", None)
        elif send.action == "late_repeat":
            await self._late_repeat(send.ref)
        elif send.action == "cut":
            await trio.sleep((0.0, 0.05, self.config.deadline_s / 2)[send.part])
            await self.terminals[TERMINALS[send.terminal]].cut()
        elif send.action == "late_original" and self.unsent:
            fields, message = self.unsent.pop(send.ref % len(self.unsent))
            await self.transmit("0200", fields, message, card=message.card)

    async def _late_repeat(self, ref: int) -> None:
        """An exact repeat of a 0200 whose advice was already answered (issue 21, failure 1:
        it must get the original answer and never undo the completed original)."""
        advised = {s.model.original for s in self._order
                   if isinstance(s.model, model.Completion | model.Reversal)
                   and "00" in s.codes()}
        originals = [s for s in self._order if s.message_class == "0200" and s.key in advised]
        if originals:
            sent = originals[ref % len(originals)]
            await self.transmit("0200", sent.fields, sent.model, repeat=True, card=sent.card)

    def _request(self, send: Send) -> tuple[dict[str, str], model.Financial]:
        card = CARD_NAMES[send.card]
        terminal = self.terminals[TERMINALS[send.terminal]]
        pin = self.pins[card] if send.pin_right else WRONG_PIN
        keys = terminal.atm.keys if terminal.atm is not None else None
        now = dt.datetime.now(dt.UTC)
        new_pin = NEW_PINS[send.new_pin] if send.kind == "pin_change" else None
        account = CARDS[card][1]
        payee = PAYEES[send.payee] if send.kind == "transfer" else None
        tags = {}
        if new_pin is not None and keys is not None:
            tags["NP"] = keys.pin_block(new_pin, CARDS[card][0])
        fields = financial_request(
            TerminalIdentity(terminal.terminal_id), card_data(card), stan=terminal.next_stan(),
            processing_code=_PROCESSING[send.kind], amount_minor=send.amount, now=now,
            pin_block=keys.pin_block(pin, CARDS[card][0]) if keys is not None else None,
            from_account=account if payee is not None else None, to_account=payee,
            tags=tags or None)
        if keys is None:  # not connected yet: a placeholder the switch answers 30 (unsent)
            fields["52"] = "0" * 16
        message = model.Financial(_key_of(fields), card, send.kind,  # type: ignore[arg-type]
                                  send.amount, pin, now.date().isoformat(), new_pin, payee)
        return fields, message

    async def _advice(self, send: Send) -> None:
        kinds = ("withdrawal", "deposit") if send.action == "complete" else (
            "withdrawal", "deposit", "transfer")
        # A terminal completes only what it was told 00 for (after a 91 or no answer it
        # dispensed nothing); it may reverse anything it sent (spec 5.4, 5.6).
        originals = [s for s in self._order if s.message_class == "0200"
                     and isinstance(s.model, model.Financial) and s.model.kind in kinds
                     and (send.action == "reverse" or "00" in s.codes())]
        if not originals:
            return
        original = originals[send.ref % len(originals)]
        assert isinstance(original.model, model.Financial)
        amount = original.model.amount
        if send.action == "complete":
            final = (amount, max(0, amount - 10_000), 0)[send.part]
            terminal = self.terminals[original.terminal]
            fields = completion_advice(original.fields, stan=terminal.next_stan(),
                                       now=dt.datetime.now(dt.UTC), final_amount_minor=final)
            await self.transmit("0220", fields, model.Completion(
                _key_of(fields), original.key, final), card=original.card)
        else:
            dispensed = min(amount, send.part * 10_000) if send.reason == "32" else None
            await self._reverse(original.fields, original.card, send.reason, dispensed)

    async def _reverse(self, original: Mapping[str, str], card: str | None, reason: str,
                       dispensed: int | None) -> None:
        terminal = self.terminals[original["41"].strip()]
        fields = reversal_advice(original, stan=terminal.next_stan(),
                                 now=dt.datetime.now(dt.UTC), reason=reason,
                                 dispensed_minor=dispensed)
        await self.transmit("0420", fields, model.Reversal(
            _key_of(fields), _original_key(fields), reason, dispensed), card=card)

    # -- the wire -----------------------------------------------------------------------------
    async def transmit(self, message_class: str, fields: dict[str, str],
                       message: model.Message, *, repeat: bool = False,
                       same_content: bool = True, card: str | None = None) -> str | None:
        """Send once (waiting for an attempt of the same key still out) and journal it."""
        key = _key_of(fields)
        while (busy := self._inflight.get((message_class, key))) is not None:
            await busy.wait()
        done = self._inflight[(message_class, key)] = trio.Event()
        try:
            return await self._attempt(message_class, fields, message, key, repeat,
                                       same_content, card)
        finally:
            del self._inflight[(message_class, key)]
            done.set()

    async def _attempt(self, message_class: str, fields: dict[str, str],
                       message: model.Message, key: model.Key, repeat: bool,
                       same_content: bool, card: str | None) -> str | None:
        terminal = self.terminals[fields["41"].strip()]
        atm = await terminal.connected(self.node, self.nursery)
        if atm is None:
            return None  # the switch is down: the terminal could not send it
        if fields.get("52") == "0" * 16:  # built before this terminal had keys
            return None
        sent = self.journal.add(Sent(message_class, key, dict(fields), message,
                                     terminal.terminal_id, card))
        if not sent.attempts:
            self._order.append(sent)
        attempt = Attempt(same_content, trio.current_time())
        sent.attempts.append(attempt)
        mti = _REPEAT_MTI[message_class] if repeat else message_class
        try:
            response = await atm.send(mti, fields)
        except HostLinkError as exc:
            attempt.error = type(exc).__name__
        except (AssertionError, ValueError, Exception) as exc:  # bad MAC or missing MAC
            attempt.error = f"{type(exc).__name__}: {exc}"
            self.journal.violations.append(
                f"answer.bad_mac: {message_class} {key}: {attempt.error}")
        else:
            attempt.code = response.fields.get("39")
            attempt.answered_at = trio.current_time()
            if attempt.code == "96":
                self.journal.violations.append(
                    f"answer.malfunction: {mti} {key} answered 96")
            if (isinstance(message, model.Financial) and message.kind == "pin_change"
                    and attempt.code == "00" and same_content and message.new_pin):
                self.pins[message.card] = message.new_pin
        return attempt.code

    # -- the end of a history -----------------------------------------------------------------
    async def settle(self) -> None:
        """What real terminals do afterwards: advices repeated until recorded (0221/0421),
        a 0420 (68) for a withdrawal that never got an answer; then wait out hold expiry and
        the sweeper."""
        self.proxy.open_window(None)
        if self.node.address is None:
            await self.node.start()
        for sent in list(self._order):
            if sent.message_class == "0200" and isinstance(sent.model, model.Financial) \
                    and sent.model.kind == "withdrawal" and all(
                        a.code is None for a in sent.attempts) and not self._reversed(sent):
                await self._reverse(sent.fields, sent.card, "68", None)
        for sent in list(self._order):
            if sent.message_class != "0200":
                await self._until_recorded(sent)
        expiry_s = self.config.hold_expiry_s + 3 * self.config.sweep_interval_s + 1.0
        last_0200 = max((s.start for s in self._order if s.message_class == "0200"),
                        default=0.0)
        stale_s = 2 * self.config.deadline_s + 5.0 + 3 * self.config.sweep_interval_s + 1.0
        since_restart_s = max(0.0, time.monotonic() - self.postgres.restarted_at)
        restarted = trio.current_time() - since_restart_s
        await trio.sleep_until(max(trio.current_time(), last_0200 + expiry_s,
                                   self.last_disturbance + stale_s, restarted + stale_s))

    def _reversed(self, sent: Sent) -> bool:
        return any(s.message_class == "0420" and isinstance(s.model, model.Reversal)
                   and s.model.original == sent.key for s in self._order)

    async def _until_recorded(self, sent: Sent) -> None:
        for _ in range(20):
            if any(a.code == "00" for a in sent.attempts):
                return
            await self.transmit(sent.message_class, sent.fields, sent.model, repeat=True,
                                card=sent.card)
            if not any(a.code == "00" for a in sent.attempts):
                await trio.sleep(0.3)

    async def probe_pin(self, card: str, pin: str) -> str | None:
        """A balance inquiry with ``pin`` (after the state was read): what PIN works now."""
        terminal = self.terminals[TERMINALS[0]]
        atm = await terminal.connected(self.node, self.nursery)
        if atm is None:
            return None
        fields = financial_request(
            TerminalIdentity(terminal.terminal_id), card_data(card), stan=terminal.next_stan(),
            processing_code="310000", amount_minor=0, now=dt.datetime.now(dt.UTC),
            pin_block=atm.keys.pin_block(pin, CARDS[card][0]))
        try:
            return (await atm.send("0200", fields)).fields.get("39")
        except HostLinkError:
            return None

    async def close(self) -> None:
        for terminal in self.terminals.values():
            await terminal.close()


__all__ = ["HistoryRunner"]
