"""The 0220 / 0420 path (spec 5.3, 5.4, 10), top to bottom.

Already done by the handler: ``30``, ``58``, ``63``. An advice cannot be declined: once the
advice batch has recorded it (and applied its effect on the original, at most once) it is
answered ``00``; a repeat gets ``00`` again with no effect; the same key with other content
gets ``94``. When PostgreSQL cannot record it the answer is ``91`` and nothing is left
behind (the claim and the effect are one transaction), so the terminal's repeat is processed
as soon as the database is back. The effects themselves are in ``auth_apply_advice``
(``switch/db/migrations/0312_authorization_advices.sql``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Awaitable, Callable
from typing import Final

import trio

from switch.authorization.answers import encode_answer, financial_fields
from switch.authorization.batches import AdviceItem, AuthorizationBatches
from switch.authorization.context import AuthContext
from switch.authorization.request import FinancialRequest, fingerprint
from switch.authorization.security import TerminalKeys
from switch.db.runtime import DatabaseUnavailable
from switch.protocol.message import Message

# A claim given back by the batch ('stale') is tried again at most this often.
resubmissions_max: Final = 3

NetworkAdvice = Callable[
    [Message, FinancialRequest, TerminalKeys, dt.datetime, float], Awaitable[bytes]
]


class AdviceFlow:
    def __init__(
        self,
        ctx: AuthContext,
        batches: AuthorizationBatches,
        network_advice: NetworkAdvice | None = None,
    ) -> None:
        self._ctx = ctx
        self._batches = batches
        # Card-network hook: advices of a network-routed original go the network's way.
        self._network_advice = network_advice

    async def handle(
        self,
        message: Message,
        request: FinancialRequest,
        keys: TerminalKeys,
        received_at: dt.datetime,
        deadline: float,
        pan_hash: str,
    ) -> bytes:
        assert request.original is not None  # parse_request requires 90 on advices
        item = AdviceItem(
            key=request.key,
            fingerprint=fingerprint(request, pan_hash),
            processing_code=request.processing_code,
            amount_minor=request.amount_minor,
            token=os.urandom(8).hex(),
            original=request.original,
            actual_amount_minor=request.actual_amount_minor,
            rrn=request.rrn,
            reason=request.reversal_reason,
        )
        code = "91"
        decided_at = received_at
        with trio.move_on_at(deadline):
            try:
                for _ in range(resubmissions_max):
                    decision = await self._batches.record_advice(item)
                    if decision.status == "network" and self._network_advice is not None:
                        # the original went to a card network (networks configured)
                        return await self._network_advice(
                            message, request, keys, received_at, deadline
                        )
                    if decision.status == "stale":
                        continue
                    if decision.status == "conflict":
                        code = "94"
                    elif decision.status in ("new", "repeat") and decision.response_code:
                        code = decision.response_code
                        decided_at = decision.created_at or received_at
                        if decision.status == "new" and item.key.message_class == "0420":
                            self._count_reversal(request)
                    break
            except DatabaseUnavailable:
                pass
        fields = financial_fields(message, code, decided_at=decided_at, language=request.language)
        return await encode_answer(self._ctx.hsm, keys.tak, message, fields)

    def _count_reversal(self, request: FinancialRequest) -> None:
        metrics = self._ctx.metrics
        if metrics is not None:
            metrics.reversal(request.reversal_reason)
