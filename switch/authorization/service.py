"""The authorization service: builds the handlers and plugs them into the core dispatcher."""

from __future__ import annotations

from typing import Any, Protocol

import trio

from switch.authorization.context import AuthContext
from switch.authorization.handlers import FinancialHandler
from switch.authorization.key_exchange import KeyExchangeHandler
from switch.authorization.security import KeyBook
from switch.authorization.sweeper import run_sweeper
from switch.db.runtime import DatabaseUnavailable
from switch.hsm.errors import HsmError
from switch.netmgmt import Handler
from switch.protocol.message import Message


class Registrar(Protocol):
    def register(self, message_class: str, handler: Handler) -> None: ...


class Authorization:
    def __init__(self, ctx: AuthContext) -> None:
        self.ctx = ctx
        self.keys = KeyBook(ctx.db)
        self.financial = FinancialHandler(ctx, self.keys)
        self.key_exchange = KeyExchangeHandler(ctx, self.keys)

    def register(self, dispatcher: Registrar) -> None:
        """Serve 0200/0220/0420 and key exchange; MAC the core's own answers (91, 96, 12)."""
        for message_class in ("0200", "0220", "0420"):
            dispatcher.register(message_class, self.financial)
        dispatcher.register("0800/161", self.key_exchange)
        set_response_mac = getattr(dispatcher, "set_response_mac", None)
        if set_response_mac is not None:
            set_response_mac(self.response_mac)

    async def response_mac(self, request: Message, session: Any, mac_input: bytes) -> str | None:
        """MAC for an answer the core builds: the terminal's TAK, remembered if PG is down."""
        terminal_id = request.terminal_id or ""
        keys = self.keys.remembered(terminal_id)
        if keys is None:
            try:
                keys = await self.keys.load(terminal_id)
            except DatabaseUnavailable:
                return None
        if keys is None or keys.tak is None:
            return None
        try:
            return await self.ctx.hsm.generate_mac(keys.tak, mac_input)
        except HsmError:
            return None

    async def run_background(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The sweeper (hold expiry, stale claims, retention); runs until cancelled."""
        await run_sweeper(self.ctx, task_status=task_status)
