"""The 0200 pipeline of spec 6, in its order of checks:

validate (30) -> terminal (58) -> MAC (63) -> idempotency (stored answer / 94) -> card (14, 41,
43, 57, 54, 75) -> PIN (55, 75) -> account (57) -> transaction type (12) -> amount (13) ->
limits (61) -> ledger (61, 65, 76, 51) -> response.

One orchestrator changes state; each step is a function in its own module that returns data or
raises :class:`Decline`. Spec 5.6: the whole decision runs under the request deadline; past it
the answer is ``91``, recorded, and any hold is released by its key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import trio

from ledger_adapter import LedgerUnavailable
from ledger_adapter.model import Account
from switch.authorization import cards, store
from switch.authorization.context import AuthContext
from switch.authorization.effects import EFFECTS, Approval, EffectInput
from switch.authorization.outcomes import Decline, Outcome
from switch.authorization.pin import verify_pin_with_counter
from switch.authorization.replies import Replier
from switch.authorization.request import FinancialRequest, fingerprint
from switch.authorization.security import TerminalKeys
from switch.authorization.transactions import (
    Kind,
    check_amount,
    check_supported,
    parse_processing_code,
)
from switch.db.runtime import DatabaseUnavailable
from switch.protocol.message import Message

# How often a duplicate polls for the answer of an original still being processed.
pending_poll_interval_s = 0.05


@dataclass(slots=True)
class Decision:
    outcome: Outcome
    approval: Approval | None = None
    card_id: int | None = None


class FinancialPipeline:
    """Answers one 0200 whose MAC has verified."""

    def __init__(self, ctx: AuthContext, replier: Replier) -> None:
        self._ctx = ctx
        self._replier = replier

    async def authorize(
        self,
        message: Message,
        request: FinancialRequest,
        keys: TerminalKeys,
        received_at: dt.datetime,
        deadline: float,
    ) -> bytes:
        ctx = self._ctx
        pan_hash = await ctx.hsm.pan_lookup_hash(request.pan)
        content = fingerprint(request, pan_hash)
        owned = False
        decision: Decision | None = None
        with trio.move_on_at(deadline):
            try:
                claim = await store.claim(
                    ctx.db,
                    request.key,
                    fingerprint=content,
                    processing_code=request.processing_code,
                    amount_minor=request.amount_minor,
                    pan_hash=pan_hash,
                )
                record = claim.record
                if not claim.claimed:
                    return await self._answer_repeat(
                        message, request, record, content, keys, received_at, deadline
                    )
                owned = True
                decision = await self._decide(request, claim, keys, received_at)
                return await self._replier.record_and_encode(
                    message,
                    request.key,
                    keys.tak,
                    received_at,
                    decision.outcome,
                    approval=decision.approval,
                    record_id=record.record_id,
                    card_id=decision.card_id,
                    language=request.language,
                )
            except (DatabaseUnavailable, LedgerUnavailable):
                pass
        return await self._unavailable(message, request, keys, received_at, owned)

    async def _unavailable(
        self,
        message: Message,
        request: FinancialRequest,
        keys: TerminalKeys,
        received_at: dt.datetime,
        owned: bool,
    ) -> bytes:
        """Spec 5.6: answer 91; when this request owns the key, record 91 and undo any hold."""
        if owned:
            with trio.CancelScope(shield=True), trio.move_on_after(self._ctx.answer_reserve_s):
                try:
                    await self._replier.record_unavailable(
                        message, request.key, received_at, request.language
                    )
                    await self._ctx.ledger.release_by_key(self._hold_key(request))
                except (DatabaseUnavailable, LedgerUnavailable):
                    pass  # the sweeper resolves the pending claim / releases again later
        return await self._replier.encode_unrecorded(
            message, keys.tak, received_at, Outcome.UNAVAILABLE, request.language
        )

    def _hold_key(self, request: FinancialRequest) -> str:
        key = request.key
        return self._ctx.hold_key(key.terminal_id, key.stan, key.transmission_dt, key.acquirer_id)

    async def _answer_repeat(
        self,
        message: Message,
        request: FinancialRequest,
        record: store.MessageRecord,
        content: str,
        keys: TerminalKeys,
        received_at: dt.datetime,
        deadline: float,
    ) -> bytes:
        """Spec 5.5: the stored answer again, ``94`` for other content; wait for one in flight."""
        ctx = self._ctx
        while True:
            if record.fingerprint != content:
                return await self._replier.encode_unrecorded(
                    message,
                    keys.tak,
                    received_at,
                    Outcome.DUPLICATE_DIFFERENT_CONTENT,
                    request.language,
                )
            if record.done:
                return await self._replier.encode_stored(message, keys.tak, record)
            stale_before = ctx.clock() - dt.timedelta(seconds=ctx.stale_after_s)
            if record.created_at < stale_before and await store.take_over_stale(
                ctx.db, request.key, stale_before
            ):
                return await self._unavailable(message, request, keys, received_at, owned=True)
            await trio.sleep(pending_poll_interval_s)
            reloaded = await store.load_record(ctx.db, request.key)
            if reloaded is None:  # purged by retention: a new request
                return await self.authorize(message, request, keys, received_at, deadline)
            record = reloaded

    async def _decide(
        self,
        request: FinancialRequest,
        claim: store.Claim,
        keys: TerminalKeys,
        received_at: dt.datetime,
    ) -> Decision:
        ctx = self._ctx
        if claim.reversal_marker:
            return Decision(Outcome.ORIGINAL_AFTER_REVERSAL)
        card_id: int | None = None
        try:
            record = cards.card_from_row(claim.card_row)
            card_id = record.card_id if record is not None else None
            # -- card-network hook (switch/networks, docs/networks.md): a card not on file may
            # -- be in a network's BIN range; with no route it goes on to 14 exactly as before.
            if record is None and ctx.networks is not None:
                routed = await ctx.networks.authorize(request, keys, received_at)
                if routed is not None:
                    return Decision(routed.outcome, approval=routed.approval)
            # -- end of card-network hook
            card = cards.check_card(record, request.presented_expiry, received_at.date())
            code = parse_processing_code(request.processing_code)
            rule = code.rule
            if request.pin_block is not None and (rule is None or rule.needs_pin):
                await verify_pin_with_counter(ctx, card, keys, request)
            account = self._account(card, request, claim.card_row)
            kind = check_supported(code)
            if request.currency != account.currency:
                raise Decline(Outcome.TRANSACTION_NOT_SUPPORTED, "currency")
            check_amount(
                kind, request.amount_minor, dispense_unit_minor=ctx.config.dispense_unit_minor
            )
            approval = await EFFECTS[kind](
                EffectInput(
                    ctx, request, card, account, keys.tpk, self._hold_key(request), received_at
                )
            )
        except Decline as decline:
            return Decision(decline.outcome, card_id=card_id)
        return Decision(Outcome.APPROVED, approval=approval, card_id=card_id)

    @staticmethod
    def _account(
        card: cards.CardRecord, request: FinancialRequest, row: Any
    ) -> Account:
        """``57`` when the card's account is frozen or closed, or 102 names another account."""
        if request.from_account is not None and request.from_account.strip() != card.account_id:
            raise Decline(Outcome.FROM_ACCOUNT_NOT_CARDS)
        if row is None or row["account_status"] is None:
            raise Decline(Outcome.SYSTEM_ERROR, "card's account missing")
        account = Account(card.account_id, row["account_name"], row["account_currency"],
                          row["account_status"], row["account_kind"])
        if account.status != "active":
            raise Decline(Outcome.ACCOUNT_NOT_ACTIVE, account.status)
        return account


def describe(decision: Decision) -> dict[str, Any]:
    """For logs: the outcome without any card data."""
    return {"outcome": decision.outcome.value, "card_id": decision.card_id}


__all__ = ["Decision", "FinancialPipeline", "Kind"]
