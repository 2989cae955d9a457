"""Completion (0220/0221) and reversal (0420/0421) advices, spec 5.3 and 5.4.

An advice with a valid MAC is recorded and answered ``00``; its effect on the original 0200
(named by the advice's 41 and field 90) is applied once:

* completion: capture the final amount of the hold (a smaller amount releases the rest);
* reversal of an open hold: release it, or capture only the field 95 amount (partial);
* reversal of a posted hold or a transfer: post the correcting entry for what was not dispensed;
* reversal of an unknown original: record a marker so a late original is declined ``94``;
* original declined or answered ``91``: no effect.

Ledger keys are derived from the original's key, so repeats and retries never move money twice;
the original's ``effect`` notes a reversal, so a second, different reversal has no effect.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import trio

from ledger_adapter import IdempotencyConflict, LedgerUnavailable
from switch.authorization import store
from switch.authorization.context import AuthContext
from switch.authorization.outcomes import Outcome
from switch.authorization.replies import Replier
from switch.authorization.request import FinancialRequest, MessageKey, fingerprint
from switch.authorization.security import TerminalKeys
from switch.db.runtime import DatabaseUnavailable
from switch.protocol.message import Message

pending_poll_interval_s = 0.05
HOLD_KINDS = ("withdrawal", "deposit")


def _key_text(key: MessageKey) -> str:
    return f"{key.terminal_id}:{key.stan}:{key.transmission_dt}:{key.acquirer_id}"


class AdvicePipeline:
    def __init__(self, ctx: AuthContext, replier: Replier) -> None:
        self._ctx = ctx
        self._replier = replier

    async def handle(
        self,
        message: Message,
        request: FinancialRequest,
        keys: TerminalKeys,
        received_at: dt.datetime,
        deadline: float,
    ) -> bytes:
        ctx = self._ctx
        content = fingerprint(request, await ctx.hsm.pan_lookup_hash(request.pan))
        with trio.move_on_at(deadline):
            try:
                while True:
                    claim = await store.claim(
                        ctx.db,
                        request.key,
                        fingerprint=content,
                        processing_code=request.processing_code,
                        amount_minor=request.amount_minor,
                    )
                    record = claim.record
                    if claim.claimed or await self._stale(record, request.key):
                        break
                    if record.fingerprint != content:
                        return await self._replier.encode_unrecorded(
                            message, keys.tak, received_at, Outcome.DUPLICATE_DIFFERENT_CONTENT
                        )
                    if record.done:
                        return await self._replier.encode_stored(message, keys.tak, record)
                    await trio.sleep(pending_poll_interval_s)
                effect = await self._apply(request)
                return await self._replier.record_and_encode(
                    message,
                    request.key,
                    keys.tak,
                    received_at,
                    Outcome.APPROVED,
                    approval=_note(effect),
                )
            except (DatabaseUnavailable, LedgerUnavailable):
                pass
        # Not recorded: the terminal repeats the advice until it gets its 00 (spec 5.3).
        return await self._replier.encode_unrecorded(
            message, keys.tak, received_at, Outcome.UNAVAILABLE
        )

    async def _stale(self, record: store.MessageRecord, key: MessageKey) -> bool:
        """A pending advice whose process died: take it over (ledger keys make redoing safe)."""
        if record.done:
            return False
        stale_before = self._ctx.clock() - dt.timedelta(seconds=self._ctx.stale_after_s)
        return record.created_at < stale_before and await store.take_over_stale(
            self._ctx.db, key, stale_before
        )

    async def _original(self, request: FinancialRequest) -> store.MessageRecord | None:
        """The original 0200's record once it is answered (a stale one is resolved as 91)."""
        ctx = self._ctx
        assert request.original is not None
        key = store.original_key(request.key.terminal_id, request.original)
        while True:
            record = await store.load_record(ctx.db, key)
            if record is None or record.done:
                return record
            if await self._stale(record, key):
                await store.finish(ctx.db, key, response_code="91", response_fields=None)
                await ctx.ledger.release_by_key(
                    ctx.hold_key(key.terminal_id, key.stan, key.transmission_dt, key.acquirer_id)
                )
                return await store.load_record(ctx.db, key)
            await trio.sleep(pending_poll_interval_s)

    async def _apply(self, request: FinancialRequest) -> dict[str, Any]:
        original = await self._original(request)
        if original is None:
            if request.key.message_class == "0420":
                assert request.original is not None
                await store.add_reversal_marker(
                    self._ctx.db, request.key.terminal_id, request.original, request.key.stan
                )
            return {"result": "original_unknown"}
        effect = original.effect
        # -- card-network hook (switch/networks): the original went to a network; so does this.
        if effect and effect.get("kind") == "network" and self._ctx.networks is not None:
            return await self._ctx.networks.forward_advice(request, effect)
        # -- end of card-network hook
        if original.response_code != "00" or not effect or "hold_id" not in effect:
            return {"result": "no_effect", "original_code": original.response_code}
        if effect.get("reversed_by"):
            return {"result": "already_reversed"}
        ledger_key = _key_text(original.key)
        if request.key.message_class == "0220":
            return await self._complete(request, effect, ledger_key)
        result = await self._reverse(request, effect, ledger_key)
        await store.update_effect(
            self._ctx.db, original.key, effect | {"reversed_by": request.key.stan}
        )
        return result

    async def _complete(
        self, request: FinancialRequest, effect: dict[str, Any], ledger_key: str
    ) -> dict[str, Any]:
        if effect["kind"] not in HOLD_KINDS:
            return {"result": "no_effect"}
        amount = min(request.amount_minor, int(effect["amount"]))
        ledger = self._ctx.ledger
        try:
            if amount <= 0:
                released = await ledger.release(f"atm:cmp:{ledger_key}", hold_id=effect["hold_id"])
                return {"result": released.status}
            captured = await ledger.capture(
                f"atm:cmp:{ledger_key}", hold_id=effect["hold_id"], amount=amount
            )
        except IdempotencyConflict:
            return {"result": "completion_conflict"}
        return {"result": captured.status, "captured": captured.captured_amount}

    async def _settle_open_hold(self, hold_id: int, kept: int, ledger_key: str) -> str:
        """Release an open hold, or capture only what was dispensed (partial, field 95)."""
        ledger = self._ctx.ledger
        if kept > 0:
            captured = await ledger.capture(f"atm:rev:{ledger_key}", hold_id=hold_id, amount=kept)
            return captured.status
        released = await ledger.release(f"atm:rev:{ledger_key}", hold_id=hold_id)
        return released.status

    async def _reverse(
        self, request: FinancialRequest, effect: dict[str, Any], ledger_key: str
    ) -> dict[str, Any]:
        """Give back what was not dispensed (all, or all but field 95)."""
        ledger = self._ctx.ledger
        hold_id = int(effect["hold_id"])
        kept = min(request.actual_amount_minor or 0, int(effect["amount"]))
        try:
            if effect["kind"] in HOLD_KINDS:
                hold = await ledger.get_hold(hold_id)
                if hold.state == "open":
                    status = await self._settle_open_hold(hold_id, kept, ledger_key)
                    if status != "already_captured":
                        return {"result": status, "kept": kept}
                    hold = await ledger.get_hold(hold_id)
                if hold.state != "captured":
                    return {"result": hold.state}
                give_back = hold.captured_amount - hold.reversed_amount - kept
            else:
                give_back = int(effect["amount"]) - kept
            if give_back <= 0:
                return {"result": "nothing_to_reverse"}
            reversed_ = await ledger.reverse(
                f"atm:corr:{ledger_key}", hold_id=hold_id, amount=give_back
            )
        except IdempotencyConflict:
            return {"result": "reversal_conflict"}
        return {"result": reversed_.status, "reversed": reversed_.reversed_amount}


def _note(effect: dict[str, Any]) -> Any:
    """An advice's 'approval' carries only its effect note (no extra fields)."""
    from switch.authorization.effects import Approval

    return Approval(effect=effect)
