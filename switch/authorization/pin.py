"""The PIN step: verify field 52 in the HSM and keep the try counter in PostgreSQL.

Spec 6: a wrong PIN is ``55``; the third consecutive wrong PIN is ``75`` and blocks the card; a
correct PIN resets the counter. The counter is updated atomically in SQL, so two terminals
using one card at once cannot lose a failure.
"""

from __future__ import annotations

from switch.authorization import cards
from switch.authorization.context import AuthContext
from switch.authorization.outcomes import Decline, Outcome
from switch.authorization.request import FinancialRequest
from switch.hsm.errors import PinVerificationFailed
from switch.hsm.verification_data import PinVerificationData


async def verify_pin_with_counter(
    ctx: AuthContext, card: cards.CardRecord, tpk: str | None, request: FinancialRequest
) -> None:
    if tpk is None or request.pin_block is None:
        raise Decline(Outcome.SYSTEM_ERROR, "no TPK for this terminal")
    try:
        await ctx.hsm.verify_pin(
            tpk=tpk,
            pin_block=request.pin_block,
            pan=request.pan,
            verification=PinVerificationData.from_json(card.pin_verification),
        )
    except PinVerificationFailed as exc:
        tries = await cards.record_pin_failure(ctx.db, card.card_id, ctx.config.pin_tries_max)
        if tries >= ctx.config.pin_tries_max:
            raise Decline(Outcome.PIN_TRIES_EXCEEDED) from exc
        raise Decline(Outcome.WRONG_PIN) from exc
    if card.pin_tries:
        await cards.reset_pin_tries(ctx.db, card.card_id)
