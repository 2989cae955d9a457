"""The 0220 / 0420 path (spec 5.3, 5.4, 10), top to bottom.

Already done by the handler: ``30``, ``58``, ``63``. An advice cannot be declined: once the
advice batch has recorded it (and applied its effect on the original, at most once) it is
answered ``00``; a repeat gets ``00`` again with no effect; the same key with other content
gets ``94``. When PostgreSQL cannot record it the answer is ``91`` and nothing is left
behind (the claim and the effect are one transaction), so the terminal's repeat is processed
as soon as the database is back. The effects themselves are in ``auth_apply_advice`` and
``auth_settle_open_holds`` (migration 0320); an advice of a card-network request is queued
for its network in the same transaction (``auth_network_advice``, migration 0703).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Awaitable, Callable
from typing import Final

import trio

from switch.authorization.answers import encode_answer, financial_fields
from switch.authorization.batch_items import AdviceItem
from switch.authorization.batches import AuthorizationBatches
from switch.authorization.context import AuthContext
from switch.authorization.request import FinancialRequest, fingerprint
from switch.authorization.security import TerminalKeys
from switch.authorization.void_journal import VoidJournal
from switch.db.runtime import DatabaseUnavailable
from switch.protocol.answer import Answer
from switch.protocol.message import Message

# A claim given back by the batch ('stale') is tried again at most this often.
resubmissions_max: Final = 3

class AdviceFlow:
    def __init__(
        self, ctx: AuthContext, batches: AuthorizationBatches, journal: VoidJournal | None = None,
        retry_voids: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self._ctx = ctx
        self._batches = batches
        # The 0200 path's owed voids: an advice of a request answered 91 whose void is still
        # owed lets the void go first, so it finds the 91 recorded and has no effect (spec 5.6).
        self._journal = journal
        self._retry_voids = retry_voids

    async def handle(
        self,
        message: Message,
        request: FinancialRequest,
        keys: TerminalKeys,
        received_at: dt.datetime,
        deadline: float,
        pan_hash: str,
    ) -> Answer:
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
                await self._settle_owed_void(request)
                for _ in range(resubmissions_max):
                    decision = await self._batches.record_advice(item)
                    if decision.status == "stale":
                        continue
                    if decision.status == "conflict":
                        code = "94"
                    elif decision.status in ("new", "repeat") and decision.response_code:
                        code = decision.response_code
                        decided_at = decision.created_at or received_at
                        if decision.status == "new" and item.key.message_class == "0420":
                            self._count_reversal(request)
                        if decision.status == "new" and _forwarded(decision.info):
                            self._wake_networks()
                    break
            except DatabaseUnavailable:
                pass
        fields = financial_fields(message, code, decided_at=decided_at, language=request.language)
        return await encode_answer(self._ctx.hsm, keys.tak, message, fields)

    async def _settle_owed_void(self, request: FinancialRequest) -> None:
        original = request.original
        if self._journal is None or self._retry_voids is None or original is None:
            return
        key = (request.key.terminal_id, original.stan, original.transmission_dt,
               original.acquirer_id)
        if self._journal.owes(key):
            await self._retry_voids()  # DatabaseUnavailable: the advice is answered 91

    def _count_reversal(self, request: FinancialRequest) -> None:
        metrics = self._ctx.metrics
        if metrics is not None:
            metrics.reversal(request.reversal_reason)

    def _wake_networks(self) -> None:
        networks = self._ctx.networks
        if networks is not None:
            networks.wake_advices()


def _forwarded(note: object) -> bool:
    """The advice batch queued an advice for a card network (auth_network_advice)."""
    return isinstance(note, dict) and note.get("result") == "forwarded"
