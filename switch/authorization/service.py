"""The authorization service: builds the engine and plugs it into the core dispatcher.

Parts: the caches (cards, terminal keys) invalidated by ``NOTIFY`` through the app's
notification hub, the batches (one PL/pgSQL call per batch per message class), the 0200 and
advice paths, key exchange, and the sweeper. The card-network path of ``switch/networks``
stays on its own pipeline (``pipeline.py``, ``advices.py``) and is used only for cards not on
file when networks are configured, and for advices of network-routed originals.
"""

from __future__ import annotations

from typing import Any, Protocol

import trio

from switch.authorization.advice_flow import AdviceFlow
from switch.authorization.advices import AdvicePipeline
from switch.authorization.batches import AuthorizationBatches
from switch.authorization.caches import CardCache
from switch.authorization.context import AuthContext
from switch.authorization.financial import FinancialFlow
from switch.authorization.handlers import FinancialHandler
from switch.authorization.key_exchange import KeyExchangeHandler
from switch.authorization.pipeline import FinancialPipeline
from switch.authorization.replies import Replier
from switch.authorization.security import KeyBook
from switch.authorization.sweeper import run_sweeper
from switch.authorization.void_journal import VoidJournal
from switch.db.runtime import DatabaseUnavailable
from switch.hsm.errors import HsmError
from switch.netmgmt import Handler
from switch.protocol.message import Message

CARDS_CHANNEL = "atm_cards"
# The financial handler keeps the request deadline itself (financial.py, advice_flow.py).
SELF_TIMED_MTIS = frozenset({"0200", "0220", "0221", "0420", "0421"})
TERMINALS_CHANNEL = "atm_terminals"


class Registrar(Protocol):
    def register(self, message_class: str, handler: Handler) -> None: ...


class Subscriptions(Protocol):
    """What the service needs of ``switch.db.notifications.Notifications``."""

    def subscribe(self, channel: str, callback: Any) -> None: ...

    def on_reset(self, callback: Any) -> None: ...


class Authorization:
    def __init__(self, ctx: AuthContext) -> None:
        self.ctx = ctx
        self.keys = KeyBook(ctx.db)
        self.cards = CardCache(ctx.db, ctx.config)
        self.batches = AuthorizationBatches(
            ctx.db, pin_tries_max=ctx.config.pin_tries_max, metrics=ctx.metrics
        )
        replier = Replier(ctx)
        self.financial = FinancialFlow(
            ctx, self.cards, self.batches, FinancialPipeline(ctx, replier).authorize,
            journal=VoidJournal(ctx.void_journal_path),
        )
        self.advices = AdviceFlow(ctx, self.batches, AdvicePipeline(ctx, replier).handle)
        self.handler = FinancialHandler(ctx, self.keys, self.financial, self.advices)
        self.key_exchange = KeyExchangeHandler(ctx, self.keys)

    def register(self, dispatcher: Registrar) -> None:
        """Serve 0200/0220/0420 and key exchange; MAC the core's own answers (91, 96, 12)."""
        for message_class in ("0200", "0220", "0420"):
            dispatcher.register(message_class, self.handler)
        dispatcher.register("0800/161", self.key_exchange)
        mark_self_timed = getattr(dispatcher, "mark_self_timed", None)
        if mark_self_timed is not None:
            mark_self_timed(SELF_TIMED_MTIS)
        set_response_mac = getattr(dispatcher, "set_response_mac", None)
        if set_response_mac is not None:
            set_response_mac(self.response_mac)

    def subscribe(self, hub: Subscriptions, terminal_directory: Any = None) -> None:
        """Drop cached cards and keys when PostgreSQL says they changed (or may have)."""
        hub.subscribe(CARDS_CHANNEL, self.cards.invalidate)
        hub.subscribe(TERMINALS_CHANNEL, self.keys.invalidate)
        hub.on_reset(self.cards.clear)
        hub.on_reset(self.keys.clear)
        if terminal_directory is not None:
            hub.subscribe(TERMINALS_CHANNEL, terminal_directory.invalidate)
            hub.on_reset(terminal_directory.clear)

    async def response_mac(self, request: Message, session: Any, mac_input: bytes) -> str | None:
        """MAC for an answer the core builds (91, 96, 12).

        Spec 10: only with the key of the terminal signed on over this connection, never the
        key of whatever terminal field 41 names; no MAC otherwise.
        """
        terminal_id = getattr(session, "terminal_id", None)
        if (
            not terminal_id
            or not getattr(session, "signed_on", False)
            or terminal_id != request.terminal_id
        ):
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
