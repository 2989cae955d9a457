"""The 0200 path of a card not on file, when card networks are configured (docs/networks.md).

Same engine, same message row, same state machine as an on-us 0200; only the decision comes
from outside:

1. the key is claimed by the engine (``auth_network_claim``, migration 0703): a repeat gets
   the stored answer, other content ``94``, a claim in flight ``91``; a PAN that turns out to
   be on file goes back to the on-us path (the cache had missed it), so chip data, PIN tries
   and the ledger are always checked by the one on-us engine;
2. the network is asked outside any transaction (:class:`CardNetworks`), within the request
   deadline;
3. its decision is recorded by a compare-and-set from ``claimed`` (``auth_network_record``).

Past the deadline the caller answers ``91`` and voids the claim (``auth_void``, as on-us); a
network approval behind a ``91`` is reversed at the network (``reverse_unanswered``, and the
network sweep as the durable backstop, ``auth_network_unanswered_approvals``).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from switch.authorization.answers import encode_answer, financial_fields
from switch.authorization.batch_items import RoutedItem
from switch.authorization.batches import AuthorizationBatches
from switch.authorization.context import AuthContext
from switch.authorization.network_port import CardNetworks
from switch.authorization.outcomes import Outcome, response_code
from switch.authorization.request import FinancialRequest
from switch.authorization.security import TerminalKeys
from switch.db.runtime import DatabaseUnavailable
from switch.protocol.answer import Answer
from switch.protocol.message import Message

# Claim statuses answered without asking the network.
ANSWERED_AT_CLAIM: Final = {"conflict": "94", "pending": "91"}


class ClaimLost(DatabaseUnavailable):
    """The claim was voided under this attempt (the stale-claim sweep): answer 91."""


class RoutedFlow:
    """Claims, asks the card network, records; the caller keeps the deadline and the 91."""

    def __init__(self, ctx: AuthContext, batches: AuthorizationBatches) -> None:
        self._ctx = ctx
        self._batches = batches

    async def authorize(
        self,
        networks: CardNetworks,
        message: Message,
        request: FinancialRequest,
        keys: TerminalKeys,
        received_at: dt.datetime,
        content: str,
        token: str,
        pan_hash: str,
    ) -> Answer | None:
        """The answer, or None when the card is on file after all (take the on-us path).

        Raises :class:`DatabaseUnavailable` when the claim or the record cannot be written."""
        key = request.key
        claim = await self._batches.claim_routed(RoutedItem(
            key, content, request.processing_code, request.amount_minor, token, pan_hash,
            request.rrn,
        ))  # fmt: skip
        if claim.status == "on_file":
            return None
        decided_at = claim.created_at or received_at
        if claim.status in ANSWERED_AT_CLAIM:  # not recorded (spec 5.5)
            return await self._answer(message, request, keys, ANSWERED_AT_CLAIM[claim.status],
                                      received_at, None)
        if claim.status == "repeat":
            return await self._answer(message, request, keys, claim.response_code or "91",
                                      decided_at, claim.fields)
        decision = await networks.authorize(request, keys, received_at)
        if decision is None:  # no network's BIN range has it: spec 6, card not on file
            code, fields, effect = response_code(Outcome.CARD_NOT_ON_FILE), None, None
        else:
            code = response_code(decision.outcome)
            fields = dict(decision.fields) if code == "00" else None
            effect = decision.effect
        result = await self._batches.record_routed(key, token, code, fields, effect)
        if result != "recorded":
            raise ClaimLost(f"claim {result}")
        return await self._answer(message, request, keys, code, decided_at, fields)

    async def _answer(
        self,
        message: Message,
        request: FinancialRequest,
        keys: TerminalKeys,
        code: str,
        decided_at: dt.datetime,
        network_fields: dict[str, str] | None,
    ) -> Answer:
        """Built like every 0210 (answers.py), plus the network's own fields on an approval:
        a repeat is answered from the same stored fields, so it is identical."""
        fields = financial_fields(message, code, decided_at=decided_at, language=request.language)
        if code == "00" and network_fields:
            fields.update(network_fields)
        return await encode_answer(self._ctx.hsm, keys.tak, message, fields)
