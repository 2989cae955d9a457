"""The authorization service: builds the engine and plugs it into the core dispatcher.

Parts: the caches (cards, terminal keys) invalidated by ``NOTIFY`` through the app's
notification hub, the batches (one PL/pgSQL call per batch per message class), the 0200 and
advice paths, key exchange, and the sweeper. Card networks join through the Protocol of
``network_port.py`` (``ctx.networks``): a card not on file is claimed and recorded by the same
engine (``routed.py``), and its advices by the same advice batch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from switch.authorization.advice_flow import AdviceFlow
from switch.authorization.batches import AuthorizationBatches
from switch.authorization.caches import CardCache
from switch.authorization.context import AuthContext
from switch.authorization.financial import FinancialFlow
from switch.authorization.handlers import FinancialHandler
from switch.authorization.key_exchange import KeyExchangeHandler
from switch.authorization.security import KeyBook
from switch.authorization.sweeper import run_sweeper
from switch.authorization.void_journal import VoidJournal
from switch.db.runtime import DatabaseUnavailable
from switch.hsm.errors import HsmError
from switch.netmgmt import Handler
from switch.ports import NotifiedCache, TerminalSession
from switch.protocol.message import Message

CARDS_CHANNEL = "atm_cards"
# The financial handler keeps the request deadline itself (financial.py, advice_flow.py).
SELF_TIMED_MTIS = frozenset({"0200", "0220", "0221", "0420", "0421"})
TERMINALS_CHANNEL = "atm_terminals"


# (request, session, mac_input) -> MAC hex, or None: the MAC of an answer the core builds.
ResponseMacProvider = Callable[[Message, TerminalSession, bytes], Awaitable[str | None]]


class Registrar(Protocol):
    """What the service needs of the core's ``switch.dispatch.Dispatcher``."""

    def register(self, message_class: str, handler: Handler) -> None: ...

    def mark_self_timed(self, mtis: frozenset[str]) -> None: ...

    def set_response_mac(self, provider: ResponseMacProvider) -> None: ...


class Subscriptions(Protocol):
    """What the service needs of ``switch.db.notifications.Notifications``."""

    def subscribe(self, channel: str, callback: Callable[[str], None]) -> None: ...

    def on_reset(self, callback: Callable[[], None]) -> None: ...


class Authorization:
    def __init__(self, ctx: AuthContext) -> None:
        self.ctx = ctx
        self.keys = KeyBook(ctx.db)
        self.cards = CardCache(ctx.db, ctx.config)
        self.batches = AuthorizationBatches(
            ctx.db, pin_tries_max=ctx.config.pin_tries_max, metrics=ctx.metrics,
            batches_in_flight_max=ctx.config.batches_in_flight_max,
        )
        self.financial = FinancialFlow(
            ctx, self.cards, self.batches, journal=VoidJournal(ctx.void_journal_path)
        )
        self.advices = AdviceFlow(ctx, self.batches, self.financial.journal,
                                  self.financial.retry_voids)
        self.handler = FinancialHandler(ctx, self.keys, self.financial, self.advices)
        self.key_exchange = KeyExchangeHandler(ctx, self.keys)

    def register(self, dispatcher: Registrar) -> None:
        """Serve 0200/0220/0420 and key exchange; MAC the core's own answers (91, 96, 12)."""
        for message_class in ("0200", "0220", "0420"):
            dispatcher.register(message_class, self.handler)
        dispatcher.register("0800/161", self.key_exchange)
        dispatcher.mark_self_timed(SELF_TIMED_MTIS)
        dispatcher.set_response_mac(self.response_mac)

    def subscribe(
        self, hub: Subscriptions, terminal_directory: NotifiedCache | None = None
    ) -> None:
        """Drop cached cards and keys when PostgreSQL says they changed (or may have)."""
        hub.subscribe(CARDS_CHANNEL, self.cards.invalidate)
        hub.subscribe(TERMINALS_CHANNEL, self.keys.invalidate)
        hub.on_reset(self.cards.clear)
        hub.on_reset(self.keys.clear)
        if terminal_directory is not None:
            hub.subscribe(TERMINALS_CHANNEL, terminal_directory.invalidate)
            hub.on_reset(terminal_directory.clear)

    async def response_mac(
        self, request: Message, session: TerminalSession, mac_input: bytes
    ) -> str | None:
        """MAC for an answer the core builds (91, 96, 12).

        Spec 10: only with the key of the terminal signed on over this connection, never the
        key of whatever terminal field 41 names; no MAC otherwise.
        """
        terminal_id = session.terminal_id
        if not terminal_id or not session.signed_on or terminal_id != request.terminal_id:
            return None
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
        """The sweeper (hold expiry, stale claims, retention, voids to retry) until cancelled."""
        await run_sweeper(self.ctx, retry_voids=self.financial.retry_voids, task_status=task_status)
