"""Entry points registered on the core dispatcher for ``0200``, ``0220`` and ``0420``.

Steps before any database write: validate (``30``, no MAC), terminal (``58``, no MAC: the
dispatcher checks sign-on; field 41 must also be the signed-on terminal), MAC (``63``). Then the
0200 pipeline or the advice pipeline takes over.
"""

from __future__ import annotations

from typing import Any

import trio

from switch.authorization.advices import AdvicePipeline
from switch.authorization.context import AuthContext
from switch.authorization.outcomes import Decline, Outcome
from switch.authorization.pipeline import FinancialPipeline
from switch.authorization.replies import Replier
from switch.authorization.request import FinancialRequest, parse_request
from switch.authorization.security import KeyBook, TerminalKeys, verify_request_mac
from switch.db.runtime import DatabaseUnavailable
from switch.protocol.message import Message


class FinancialHandler:
    """``handler(request, raw, session) -> bytes | None`` for every financial message class."""

    def __init__(self, ctx: AuthContext, keys: KeyBook) -> None:
        self._ctx = ctx
        self._keys = keys
        self._replier = Replier(ctx)
        self._pipeline = FinancialPipeline(ctx, self._replier)
        self._advices = AdvicePipeline(ctx, self._replier)

    async def __call__(self, message: Message, raw: bytes, session: Any) -> bytes | None:
        ctx = self._ctx
        received_at = ctx.clock()
        # Spec 5.6: our own deadline, inside the server's (which cancels the handler).
        deadline = min(trio.current_time() + ctx.request_deadline_s,
                       trio.current_effective_deadline()) - ctx.answer_reserve_s
        try:
            request = parse_request(message.mti, message.fields)
        except Decline as decline:
            return await self._replier.encode_unrecorded(
                message, None, received_at, decline.outcome
            )
        if getattr(session, "terminal_id", None) != request.key.terminal_id:
            return await self._replier.encode_unrecorded(
                message, None, received_at, Outcome.TERMINAL_NOT_PERMITTED
            )
        keys = await self._verified_keys(message, raw, request, session)
        if isinstance(keys, bytes):
            return keys
        if request.key.message_class == "0200":
            return await self._pipeline.authorize(message, request, keys, received_at, deadline)
        return await self._advices.handle(message, request, keys, received_at, deadline)

    async def _verified_keys(
        self, message: Message, raw: bytes, request: FinancialRequest, session: Any
    ) -> TerminalKeys | bytes:
        """The terminal's keys once the MAC verifies; otherwise the (unrecorded) answer."""
        received_at = self._ctx.clock()
        try:
            keys = await self._keys.load(request.key.terminal_id, session)
        except DatabaseUnavailable:
            return await self._replier.encode_unrecorded(
                message, None, received_at, Outcome.UNAVAILABLE, request.language
            )
        tak = keys.tak if keys is not None else None
        try:
            await verify_request_mac(self._ctx.hsm, tak, raw, message.fields)
        except Decline as decline:
            return await self._replier.encode_unrecorded(
                message, tak, received_at, decline.outcome, request.language
            )
        assert keys is not None
        return keys
