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
from switch.authorization.security import TerminalKeys
from switch.hsm.errors import PinVerificationFailed
from switch.hsm.verification_data import PinVerificationData

# Spec 7: TDES terminals send format 0 in field 52, AES terminals format 4 in 48/PB.
PIN_BLOCK_FORMATS = {"tdes": 0, "aes": 4}


async def verify_pin_with_counter(
    ctx: AuthContext, card: cards.CardRecord, keys: TerminalKeys, request: FinancialRequest
) -> None:
    if keys.tpk is None or request.pin_block is None:
        raise Decline(Outcome.SYSTEM_ERROR, "no TPK for this terminal")
    if PIN_BLOCK_FORMATS.get(keys.key_type) != request.pin_block_format:
        raise Decline(Outcome.FORMAT_ERROR, "PIN block format does not fit the terminal's keys")
    try:
        await ctx.hsm.verify_pin(
            tpk=keys.tpk,
            pin_block=request.pin_block,
            pan=request.pan,
            verification=PinVerificationData.from_json(card.pin_verification),
            pin_block_format=request.pin_block_format,
        )
    except PinVerificationFailed as exc:
        tries = await cards.record_pin_failure(ctx.db, card.card_id, ctx.config.pin_tries_max)
        if tries >= ctx.config.pin_tries_max:
            raise Decline(Outcome.PIN_TRIES_EXCEEDED) from exc
        raise Decline(Outcome.WRONG_PIN) from exc
    if card.pin_tries:
        await cards.reset_pin_tries(ctx.db, card.card_id)
