"""Routes each decoded request to the code that answers it.

Order of checks (spec 6): ``30`` for a missing mandatory field (no MAC), then the
0800 family (sign-on, sign-off, echo, key exchange), then ``58`` when the
connection is not signed on as field 41's enabled terminal (no MAC), then the
handler registered for the message class, or ``12`` when there is none.

Other parts plug in with :meth:`Dispatcher.register`; a handler is
``async handler(request, raw, session) -> Reply``: an
:class:`~switch.protocol.answer.Answer` (the encoded response without the length prefix, with
its field 39), the bare bytes, or None (no answer). Handlers run under the server's
per-request deadline: ``trio.current_effective_deadline()`` tells them when it
ends, and they are cancelled then (shield any clean-up).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from switch.db.runtime import DatabaseUnavailable
from switch.netmgmt import Handler, NetworkManagement, answer
from switch.protocol.answer import Reply
from switch.protocol.codes import (
    RESPONSE_CODES_WITHOUT_MAC,
    MessageClass,
    ResponseCode,
    is_request_mti,
    message_class,
)
from switch.protocol.message import Message, encode_message, encode_message_async_mac
from switch.protocol.requirements import missing_fields
from switch.protocol.responses import response_fields, response_mti, settlement_date
from switch.session import Session

log = logging.getLogger("atm.dispatch")

KEY_EXCHANGE: Final = "0800/161"
REGISTRABLE: Final = frozenset({"0200", "0220", "0420", KEY_EXCHANGE})

# (request, session, mac_input) -> MAC hex, or None when the terminal has no TAK.
ResponseMac = Callable[[Message, Session, bytes], Awaitable[str | None]]


class _NoMac(Exception):
    """The MAC provider has no key for this terminal: answer without a MAC."""


class Dispatcher:
    """``await dispatcher.handle(request, raw, session) -> Reply``."""

    def __init__(
        self, network: NetworkManagement, *, clock: Callable[[], dt.datetime] | None = None
    ) -> None:
        self._network = network
        self._handlers: dict[str, Handler] = {}
        self._response_mac: ResponseMac | None = None
        # Request MTIs whose registered handler keeps the request deadline itself.
        self.self_timed_mtis: set[str] = set()
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def register(self, message_class: str, handler: Handler) -> None:
        """Serve ``message_class`` ("0200", "0220", "0420" or "0800/161") with ``handler``."""
        if message_class not in REGISTRABLE:
            raise ValueError(f"cannot register {message_class!r}; use one of {sorted(REGISTRABLE)}")
        if message_class in self._handlers:
            raise ValueError(f"a handler for {message_class} is already registered")
        self._handlers[message_class] = handler

    def mark_self_timed(self, mtis: frozenset[str]) -> None:
        """The handlers of these MTIs answer within the request deadline on their own (they
        run their own deadline and answer 91 inside it), so the server adds no scope."""
        self.self_timed_mtis.update(mtis)

    def set_response_mac(self, provider: ResponseMac) -> None:
        """How the core MACs the answers it builds itself (``91``, ``12``, ``96``)."""
        self._response_mac = provider

    async def handle(self, request: Message, raw: bytes, session: Session) -> Reply:
        klass = message_class(request.mti)
        if not is_request_mti(request.mti):
            return None  # a response or junk MTI from the terminal: nothing to answer
        if klass is None or missing_fields(request) or request.terminal_id is None:
            return answer(request, ResponseCode.FORMAT_ERROR)
        if klass is MessageClass.NETWORK:
            return await self._network.handle(
                request, raw, session, self._handlers.get(KEY_EXCHANGE)
            )
        try:
            permitted = await self._network.permits(request, session)
        except DatabaseUnavailable:
            # The registry could not be read: the switch is unavailable (91), not the terminal
            # refused (58) nor a malfunction (96); spec 6 and 5.6.
            return await self.fallback_response(request, session, ResponseCode.UNAVAILABLE)
        if not permitted:
            return answer(request, ResponseCode.NOT_PERMITTED_TO_TERMINAL)
        handler = self._handlers.get(klass.value)
        if handler is None:
            return await self.fallback_response(request, session, ResponseCode.INVALID_TRANSACTION)
        return await handler(request, raw, session)

    async def fallback_response(
        self, request: Message, session: Session, response_code: str
    ) -> bytes | None:
        """An answer the core builds itself (deadline ``91``, overload ``91``, no handler ``12``).

        MACed through the registered provider when the class needs a MAC and the
        terminal has a TAK; otherwise sent without (spec 8: "without a MAC if the
        TAK is unknown").
        """
        klass = message_class(request.mti)
        if not is_request_mti(request.mti):
            return None
        if klass in (None, MessageClass.NETWORK) or response_code in RESPONSE_CODES_WITHOUT_MAC:
            return answer(request, response_code)
        fields = response_fields(request, response_code, {"15": settlement_date(self._clock())})
        mti = response_mti(request.mti)
        provider = self._response_mac
        if provider is None:
            return encode_message(mti, fields)

        async def mac(mac_input: bytes) -> str:
            value = await provider(request, session, mac_input)
            if value is None:
                raise _NoMac
            return value

        try:
            return await encode_message_async_mac(mti, fields, mac=mac)
        except _NoMac:
            return encode_message(mti, fields)
        except Exception as exc:  # an HSM failure must not cost the terminal its answer
            log.warning(
                "response MAC failed",
                extra={"terminal_id": request.terminal_id, "reason": repr(exc)},
            )
            return encode_message(mti, fields)
