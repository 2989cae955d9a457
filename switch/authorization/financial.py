"""The 0200 path, top to bottom (spec 6's order of checks; docs/authorization.md).

Already done by the handler: ``30`` (format), ``58`` (terminal), ``63`` (MAC). Here:

1. the card from the cache (a hint: the batch checks its version under lock);
2. everything that needs a key, in Python, before the database: the PIN verified against the
   card's PIN data (``ok``/``bad``; ``unchecked`` when the copy says the card cannot be used,
   so no PIN is evaluated for it), the new PIN's data for a PIN change;
3. the checks that depend on the request alone (``12``, ``13``, ``61`` per transaction), as
   one code handed to the batch, which applies it at its place in the order;
4. one :class:`~switch.authorization.batch_items.FinancialItem` into the 0200 batch, which
   claims the key, re-checks the card, counts PIN tries, checks the account and limits,
   moves the money and stores the decision in one transaction;
5. the answer built from the decision (``answers.py``).

Past the request deadline the answer is ``91`` and the request is voided in PostgreSQL: its
decision becomes ``91`` and its hold is released in the same transaction (spec 5.6, 10). A
void PostgreSQL cannot take in time is written to the void journal before the ``91`` leaves
(``void_journal.py``) and replayed by the sweeper, also after a restart; a repeat of such a
request is answered ``91`` while its void is owed. Only the attempt that made the claim can
void it, and not once a repeat was handed its decision (``auth_void``, migration 0320).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from typing import Final

import trio

from ledger_adapter import DailyLimit
from ledger_adapter import requests as ledger_requests
from switch.authorization.answers import encode_answer, financial_fields
from switch.authorization.batch_items import Decision, FinancialItem
from switch.authorization.batches import AuthorizationBatches
from switch.authorization.before_batch import (
    DESCRIPTIONS,
    KIND_NAMES,
    UNUSABLE_STATUSES,
    card_expired,
    chip_outcome,
    static_code,
)
from switch.authorization.caches import CardCache, CardView
from switch.authorization.context import AuthContext
from switch.authorization.limits import limit_day
from switch.authorization.network_port import CardNetworks
from switch.authorization.outcomes import Decline, Outcome
from switch.authorization.request import FinancialRequest, fingerprint
from switch.authorization.routed import RoutedFlow
from switch.authorization.security import TerminalKeys
from switch.authorization.transactions import parse_processing_code
from switch.authorization.void_journal import OwedVoid, VoidJournal
from switch.db.runtime import DatabaseUnavailable
from switch.emv.checks import (
    ChipResult,
    Fallback,
    FormatError,
    NotChip,
    Passed,
    arpc_field55,
    check_chip,
    cryptogram_of,
)
from switch.hsm.errors import PinPolicyError, PinVerificationFailed
from switch.protocol.answer import Answer
from switch.protocol.message import Message

log = logging.getLogger("atm.authorization")

# A stale card copy is refreshed and the request resubmitted at most this often.
stale_resubmissions_max: Final = 3
# How much of the answer reserve the 91 waits for its void; the rest is for the answer.
void_share_of_reserve: Final = 0.5
# Owed voids replayed per sweeper pass (one auth_void call).
voids_per_retry_max: Final = 500

class FinancialFlow:
    """Answers one 0200 whose MAC has verified."""

    def __init__(
        self,
        ctx: AuthContext,
        cards: CardCache,
        batches: AuthorizationBatches,
        journal: VoidJournal | None = None,
    ) -> None:
        self._ctx = ctx
        self._cards = cards
        self._batches = batches
        # A card not on file goes to a card network when networks are configured (routed.py).
        self._routed = RoutedFlow(ctx, batches)
        self.journal = journal if journal is not None else VoidJournal()

    async def authorize(
        self,
        message: Message,
        request: FinancialRequest,
        keys: TerminalKeys,
        received_at: dt.datetime,
        deadline: float,
        pan_hash: str,
    ) -> Answer:
        content = fingerprint(request, pan_hash)
        token = os.urandom(8).hex()
        owed = _owed_void(request, content, token)
        if self.journal.owes(owed.key):
            # Spec 5.6: a repeat of a 91 gets 91 again, and the void it is owed goes first.
            await self.retry_voids()
            return await self._answer_91(message, request, keys, received_at)
        networks = self._ctx.networks
        routed = False
        with trio.move_on_at(deadline):
            try:
                card = await self._cards.get(pan_hash)
                if card is None and networks is not None:
                    routed = True
                    answer = await self._routed.authorize(
                        networks, message, request, keys, received_at, content, token, pan_hash
                    )
                    if answer is not None:
                        return answer
                    routed = False  # on file after all: the on-us engine decides
                    card = await self._cards.reload(pan_hash)
                for _ in range(stale_resubmissions_max):
                    chip = await self._chip(message, card)
                    item: FinancialItem = await self._prepare(
                        request, card, keys, received_at, content, token, chip
                    )
                    decision = await self._batches.decide(item)
                    if decision.status != "stale":
                        return await self._answer(
                            message, request, keys, decision, received_at, card, chip
                        )
                    card = await self._cards.reload(pan_hash)
            except DatabaseUnavailable:
                pass
        answer = await self._unavailable(message, request, keys, owed, received_at)
        if routed and networks is not None:
            await _reverse_at_network(networks, self._ctx.answer_reserve_s * 0.25)
        return answer

    async def _chip(self, message: Message, card: CardView | None) -> ChipResult:
        """Section 11's checks that need the HSM, before the batch (which records the ATC)."""
        if card is None:
            return NotChip()  # 14 comes first (spec 6); the batch answers it
        result = await check_chip(message.fields, card.chip, self._ctx.hsm)
        if isinstance(result, FormatError):  # the handler answers 30 before we get here
            raise Decline(Outcome.FORMAT_ERROR, result.reason)
        return result

    async def _answer(
        self,
        message: Message,
        request: FinancialRequest,
        keys: TerminalKeys,
        decision: Decision,
        received_at: dt.datetime,
        card: CardView | None = None,
        chip: ChipResult | None = None,
    ) -> Answer:
        if decision.status == "conflict":
            code = "94"  # same key, other content: not recorded (spec 5.5)
        elif decision.status == "pending" or decision.response_code is None:
            code = "91"  # the original is still being decided elsewhere
        else:
            code = decision.response_code
        balances = None
        if decision.ledger_balance is not None and decision.available is not None:
            balances = (decision.ledger_balance, decision.available, decision.currency or "")
        fields = financial_fields(
            message,
            code,
            decided_at=decision.created_at or received_at,
            record_id=decision.record_id,
            balances=balances,
            info=decision.info,
            language=request.language,
            chip_fallback=isinstance(chip, Fallback) and code == "05",
        )
        if decision.chip_passed and card is not None and card.chip is not None:
            # Section 11: 55 = tag 91 (ARPC || ARC of this field 39) exactly when the
            # cryptogram passed; a repeat gets it recomputed from its own (identical) 55.
            passed = chip if isinstance(chip, Passed) else cryptogram_of(message.fields, card.chip)
            field55 = await arpc_field55(self._ctx.hsm, passed, code)
            if field55 is not None:
                fields["55"] = field55
        return await encode_answer(self._ctx.hsm, keys.tak, message, fields)

    async def _unavailable(
        self,
        message: Message,
        request: FinancialRequest,
        keys: TerminalKeys,
        owed: OwedVoid,
        received_at: dt.datetime,
    ) -> Answer:
        """Spec 5.6: answer 91, after recording it with its hold released (one transaction),
        or, when PostgreSQL cannot take the void in time, after journalling it."""
        # Half the reserve: the 91 must still leave within the request deadline (spec 5.6).
        wait_s = self._ctx.answer_reserve_s * void_share_of_reserve
        results: list[str] = []
        with trio.CancelScope(shield=True), trio.move_on_after(wait_s):
            try:
                results = await self._batches.void([owed], timeout_s=wait_s)
            except DatabaseUnavailable:
                pass
        if results:
            _log_void(owed, results[0])
        else:
            self.journal.add(owed)  # durable before the 91 leaves
        return await self._answer_91(message, request, keys, received_at)

    async def _answer_91(
        self, message: Message, request: FinancialRequest, keys: TerminalKeys,
        received_at: dt.datetime,
    ) -> Answer:
        fields = financial_fields(message, "91", decided_at=received_at, language=request.language)
        return await encode_answer(self._ctx.hsm, keys.tak, message, fields)

    async def retry_voids(self) -> int:
        """Give PostgreSQL the voids it owes (sweeper, and a repeat of an owed request);
        returns how many it settled."""
        owed = self.journal.pending(voids_per_retry_max)
        if not owed:
            return 0
        try:
            results = await self._batches.void(owed, timeout_s=self._ctx.answer_reserve_s * 4)
        except DatabaseUnavailable:
            return 0
        for void, result in zip(owed, results, strict=True):
            _log_void(void, result)
        self.journal.settle(owed)
        return len(owed)

    async def _prepare(
        self,
        request: FinancialRequest,
        card: CardView | None,
        keys: TerminalKeys,
        received_at: dt.datetime,
        content: str,
        token: str,
        chip: ChipResult | None = None,
    ) -> FinancialItem:
        ctx = self._ctx
        code = parse_processing_code(request.processing_code)
        kind = KIND_NAMES.get(code.kind, "unsupported") if code.kind else "unsupported"
        static = static_code(request, card, ctx.config.dispense_unit_minor)
        pin, new_pin = "none", None
        chip_state, atc = chip_outcome(chip)
        # Section 11: forged, replayed or stripe-read chip data never has a PIN evaluated;
        # the batch declines it (05/59) before its PIN step.
        pin_bearing = request.pin_block is not None and (code.rule is None or code.rule.needs_pin)
        if chip_state in ("none", "passed") and card is not None and pin_bearing:
            started = time.perf_counter()
            pin, new_pin = await self._check_pin(request, card, keys, received_at, kind, static)
            if ctx.metrics is not None:
                ctx.metrics.observe_stage("hsm_pin", time.perf_counter() - started)
            if new_pin == "rejected":
                static, new_pin = "05", None
        day = limit_day(received_at)
        limits = card.limits if card is not None else None
        daily_max = daily_count = None
        ledger_fp = ""
        account = card.account_id if card is not None else ""
        if kind == "withdrawal" and limits is not None:
            daily_max, daily_count = limits.daily_withdrawal_max, limits.daily_withdrawal_count
            daily = DailyLimit(f"card:{card.card_id}", day, daily_max, daily_count)  # type: ignore[union-attr]
            ledger_fp = ledger_requests.hold_fingerprint(
                account, request.amount_minor, "debit", "capture", daily, None
            )
        elif kind == "deposit":
            ledger_fp = ledger_requests.hold_fingerprint(
                account, request.amount_minor, "credit", "release", None, None
            )
        elif kind == "transfer" and limits is not None:
            daily_max = limits.daily_transfer_max
            daily = DailyLimit(f"card:{card.card_id}:transfer", day, daily_max, None)  # type: ignore[union-attr]
            ledger_fp = ledger_requests.transfer_fingerprint(
                account, (request.to_account or "").strip(), request.amount_minor, daily
            )
        key = request.key
        return FinancialItem(
            key=key,
            fingerprint=content,
            processing_code=request.processing_code,
            amount_minor=request.amount_minor,
            token=token,
            card_id=card.card_id if card is not None else None,
            card_version=card.version if card is not None else 0,
            presented_expiry=request.presented_expiry,
            month=int(received_at.astimezone(dt.UTC).strftime("%y%m")),
            pin=pin,
            from_account=request.from_account.strip() if request.from_account else None,
            to_account=request.to_account.strip() if request.to_account else None,
            static_code=static,
            kind=kind,
            new_pin=new_pin,
            currency=request.currency,
            day=day,
            expires_at=received_at + dt.timedelta(seconds=ctx.config.hold_expiry_s),
            daily_max=daily_max,
            daily_count=daily_count,
            ledger_key=ctx.hold_key(
                key.terminal_id, key.stan, key.transmission_dt, key.acquirer_id
            ),
            ledger_fingerprint=ledger_fp,
            description=DESCRIPTIONS.get(kind),
            reference=json.dumps(
                {
                    "terminal": key.terminal_id,
                    "stan": key.stan,
                    "card": card.card_id if card is not None else None,
                    "pc": request.processing_code,
                    "description": DESCRIPTIONS.get(kind),
                }
            )
            if kind in DESCRIPTIONS
            else None,
            rrn=request.rrn,
            chip=chip_state,
            atc=atc,
        )

    async def _check_pin(
        self,
        request: FinancialRequest,
        card: CardView,
        keys: TerminalKeys,
        received_at: dt.datetime,
        kind: str,
        static: str | None,
    ) -> tuple[str, str | None]:
        """(``ok`` | ``bad`` | ``unchecked``, the new PIN data of a PIN change or None)."""
        if card.status in UNUSABLE_STATUSES or card_expired(card, request, received_at):
            return "unchecked", None  # declined before the PIN step; the batch confirms it
        if keys.tpk is None or request.pin_block is None:
            raise Decline(Outcome.SYSTEM_ERROR, "no TPK for this terminal")
        hsm = self._ctx.hsm
        if kind == "pin_change" and static is None:
            try:
                changed = await hsm.change_pin(
                    tpk=keys.tpk,
                    old_pin_block=request.pin_block,
                    new_pin_block=request.tags["NP"],
                    pan=request.pan,
                    verification=card.pin_verification,
                    pin_block_format=request.pin_block_format,
                )
            except PinVerificationFailed:
                return "bad", None
            except PinPolicyError:
                return "ok", "rejected"
            return "ok", changed.to_json()
        try:
            await hsm.verify_pin(
                tpk=keys.tpk,
                pin_block=request.pin_block,
                pan=request.pan,
                verification=card.pin_verification,
                pin_block_format=request.pin_block_format,
            )
        except PinVerificationFailed:
            return "bad", None
        return "ok", None


# auth_void results after which the terminal's 91 and the stored decision disagree: the
# decision stands because the terminal may act on it (a repeat got it, or an advice did).
_VOID_REFUSALS: Final = frozenset({"not_this_attempt", "answered_to_repeat", "settled"})


async def _reverse_at_network(networks: CardNetworks, bound_s: float) -> None:
    """After a routed 91: reverse a network approval now, if there was one (best effort,
    bounded; the network sweep does it later otherwise)."""
    with trio.CancelScope(shield=True), trio.move_on_after(bound_s):
        try:
            await networks.reverse_unanswered()
        except DatabaseUnavailable:
            pass


def _owed_void(request: FinancialRequest, content: str, token: str) -> OwedVoid:
    key = request.key
    return OwedVoid(
        key.terminal_id, key.stan, key.transmission_dt, key.acquirer_id, content,
        request.processing_code, request.amount_minor, token,
    )  # fmt: skip


def _log_void(void: OwedVoid, result: str) -> None:
    if result in _VOID_REFUSALS:
        log.warning("91 answered but the decision stands (%s)", result,
                    extra={"terminal": void.terminal_id, "stan": void.stan})
