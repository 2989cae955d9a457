"""Entry points registered on the core dispatcher for ``0200``, ``0220`` and ``0420``.

Steps before anything reaches the database: validate (``30``, no MAC), terminal (``58``, no
MAC: the dispatcher checks sign-on; field 41 must also be the signed-on terminal), MAC
(``63``). Then the 0200 path (``financial.py``) or the advice path (``advice_flow.py``).
"""

from __future__ import annotations

import time

import trio

from ops.metrics import DEFAULT_GROUP
from switch.authorization.advice_flow import AdviceFlow
from switch.authorization.answers import encode_answer, financial_fields
from switch.authorization.before_batch import pin_format_fits
from switch.authorization.context import AuthContext
from switch.authorization.financial import FinancialFlow
from switch.authorization.outcomes import Decline, Outcome, response_code
from switch.authorization.request import FinancialRequest, parse_request
from switch.authorization.security import KeyBook, TerminalKeys, verify_request_mac
from switch.db.runtime import DatabaseUnavailable
from switch.emv.checks import chip_format_error
from switch.ports import TerminalSession
from switch.protocol.answer import Answer
from switch.protocol.message import Message


class FinancialHandler:
    """``handler(request, raw, session) -> Answer`` for every financial message class."""

    def __init__(
        self, ctx: AuthContext, keys: KeyBook, financial: FinancialFlow, advices: AdviceFlow
    ) -> None:
        self._ctx = ctx
        self._keys = keys
        self._financial = financial
        self._advices = advices

    async def __call__(
        self, message: Message, raw: bytes, session: TerminalSession
    ) -> Answer:
        ctx = self._ctx
        received_at = ctx.clock()
        # Spec 5.6: this handler keeps the request deadline itself (the server adds no scope
        # for financial MTIs): decide by ``deadline``, then the reserve is for the 91.
        deadline = trio.current_time() + ctx.request_deadline_s - ctx.answer_reserve_s
        try:
            request = parse_request(message.mti, message.fields)
        except Decline as decline:
            return await self._unrecorded(message, None, decline.outcome, None)
        if request.key.message_class == "0200" and chip_format_error(message.fields) is not None:
            # Section 11: malformed chip data is a format error (30, first of spec 6's checks).
            return await self._unrecorded(message, None, Outcome.FORMAT_ERROR, request.language)
        if session.terminal_id != request.key.terminal_id:
            return await self._unrecorded(message, None, Outcome.TERMINAL_NOT_PERMITTED, None)
        try:
            loaded = await self._keys.load(request.key.terminal_id)
        except DatabaseUnavailable:
            return await self._unrecorded(message, None, Outcome.UNAVAILABLE, request.language)
        keys = await self._verified_keys(message, raw, request, loaded)
        if isinstance(keys, Answer):
            return keys
        pan_hash = await ctx.hsm.pan_lookup_hash(request.pan)
        if request.key.message_class != "0200":
            return await self._advices.handle(
                message, request, keys, received_at, deadline, pan_hash
            )
        tak = keys.tak
        if not pin_format_fits(keys, request):
            return await self._unrecorded(message, tak, Outcome.FORMAT_ERROR, request.language)
        try:
            return await self._financial.authorize(
                message, request, keys, received_at, deadline, pan_hash
            )
        except Decline as decline:  # a key missing for this terminal: not recorded
            return await self._unrecorded(message, tak, decline.outcome, request.language)

    async def _verified_keys(
        self, message: Message, raw: bytes, request: FinancialRequest, keys: TerminalKeys | None
    ) -> TerminalKeys | Answer:
        """The keys once the MAC verifies, else the 63 answer. A MAC that fails under cached
        keys is checked once more under keys read afresh (a key exchange on another node whose
        NOTIFY has not arrived yet must not cost the terminal a 63)."""
        ctx = self._ctx
        metrics = ctx.metrics
        for attempt in range(2):
            tak = keys.tak if keys is not None else None
            started = time.perf_counter()
            try:
                await verify_request_mac(ctx.hsm, tak, raw, message.fields)
            except Decline as decline:
                if attempt == 1 and metrics is not None:
                    metrics.mac_failure(DEFAULT_GROUP)
                if attempt == 0:
                    self._keys.invalidate(request.key.terminal_id)
                    try:
                        keys = await self._keys.load(request.key.terminal_id)
                    except DatabaseUnavailable:
                        pass
                    else:
                        continue
                return await self._unrecorded(message, tak, decline.outcome, request.language)
            if metrics is not None:
                metrics.observe_stage("hsm_mac", time.perf_counter() - started)
            assert keys is not None  # verify_request_mac refuses a missing TAK
            return keys
        raise AssertionError("unreachable")

    async def _unrecorded(
        self, message: Message, tak: str | None, outcome: Outcome, language: str | None
    ) -> Answer:
        """Answers decided before any database write (30, 58, 63, 91): spec 5.5, not recorded."""
        fields = financial_fields(
            message, response_code(outcome), decided_at=self._ctx.clock(), language=language
        )
        return await encode_answer(self._ctx.hsm, tak, message, fields)


__all__ = ["FinancialHandler", "FinancialRequest", "TerminalKeys"]
