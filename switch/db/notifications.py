"""PostgreSQL ``LISTEN/NOTIFY`` delivered to Trio callbacks.

In-memory caches (terminal keys, cards) are hints that must drop an entry as soon as
another process, node or CLI command changes it. Triggers on those tables call
``pg_notify(channel, id)``; this module keeps one dedicated connection LISTENing on every
subscribed channel and calls the subscribers in the Trio thread with the payload.

A notification sent while the listener was disconnected is lost, so when the connection
drops every ``on_reset`` callback runs at once (caches clear themselves and refill from the
database), and again after each reconnection: a cache is never trusted across a gap.

Limits: reconnection backs off from ``reconnect_delay_min_s`` to ``reconnect_delay_max_s``;
callbacks must be quick and must not raise (an exception is logged and swallowed so one bad
subscriber cannot stop invalidation for the others).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import asyncpg
import trio

from switch.db.runtime import Database

log = logging.getLogger("atm.db.notifications")

reconnect_delay_min_s = 0.2
reconnect_delay_max_s = 5.0
connect_timeout_s = 10.0

Subscriber = Callable[[str], None]
ResetHandler = Callable[[], None]


class Notifications:
    """One LISTEN connection per process; ``await nursery.start(hub.run)``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._reset_handlers: list[ResetHandler] = []
        self._connection: Any = None
        self._lost = trio.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self.connected = False
        # Observability and tests: how many notifications were delivered and resets run.
        self.delivered = 0
        self.resets = 0

    def subscribe(self, channel: str, callback: Subscriber) -> None:
        """Call ``callback(payload)`` in the Trio thread for every NOTIFY on ``channel``.

        Channels must be subscribed before :meth:`run` starts (they are LISTENed on connect).
        """
        if self.connected:
            raise RuntimeError("subscribe before the listener starts")
        self._subscribers.setdefault(channel, []).append(callback)

    def on_reset(self, callback: ResetHandler) -> None:
        """Call ``callback()`` whenever notifications may have been missed."""
        self._reset_handlers.append(callback)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled, reconnecting with backoff; ``started()`` once listening
        (or after the first failed attempt, so a switch still starts while PostgreSQL is
        down: its caches then stay empty until the listener connects)."""
        self._token = trio.lowlevel.current_trio_token()
        delay = reconnect_delay_min_s
        started = False
        try:
            while True:
                try:
                    await self._connect()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                        trio.TooSlowError) as exc:
                    log.warning("notification listener cannot connect: %s", type(exc).__name__)
                else:
                    delay = reconnect_delay_min_s
                    self._reset("connected")
                    if not started:
                        started = True
                        task_status.started()
                    await self._lost.wait()
                    self.connected = False
                    self._reset("connection lost")
                if not started:
                    started = True
                    task_status.started()
                await trio.sleep(delay)
                delay = min(reconnect_delay_max_s, delay * 2)
        finally:
            with trio.CancelScope(shield=True):
                await self._close()

    async def _connect(self) -> None:
        self._lost = trio.Event()
        channels = list(self._subscribers)

        async def connect() -> Any:
            connection = await asyncpg.connect(self._db.dsn, timeout=connect_timeout_s)
            try:
                for channel in channels:
                    await connection.add_listener(channel, self._on_notify)
                connection.add_termination_listener(self._on_terminated)
            except BaseException:
                await connection.close()
                raise
            return connection

        with trio.fail_after(connect_timeout_s + 1.0):
            self._connection = await self._db.bridge.call(connect())
        self.connected = True

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        self.connected = False
        if connection is None:
            return
        with trio.move_on_after(2.0):
            try:
                await self._db.bridge.call(connection.close(timeout=1.0))
            except Exception:  # closing a dead connection: nothing left to do
                log.debug("listener close failed", exc_info=True)

    # -- called by asyncpg, possibly in another thread --------------------------------------

    def _on_notify(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        token = self._token
        if token is None:
            return
        try:
            token.run_sync_soon(self._deliver, channel, payload)
        except trio.RunFinishedError:
            pass

    def _on_terminated(self, _connection: Any) -> None:
        token = self._token
        if token is None:
            return
        try:
            token.run_sync_soon(self._lost.set)
        except trio.RunFinishedError:
            pass

    # -- in the Trio thread ----------------------------------------------------------------

    def _deliver(self, channel: str, payload: str) -> None:
        self.delivered += 1
        for callback in self._subscribers.get(channel, ()):
            try:
                callback(payload)
            except Exception:
                log.exception("notification subscriber failed", extra={"channel": channel})

    def _reset(self, reason: str) -> None:
        self.resets += 1
        log.info("caches reset", extra={"reason": reason})
        for callback in self._reset_handlers:
            try:
                callback()
            except Exception:
                log.exception("reset handler failed")


def backoff_schedule(attempts: int) -> list[float]:
    """The reconnect delays of the first ``attempts`` failures (documentation and tests)."""
    delays = []
    delay = reconnect_delay_min_s
    for _ in range(max(0, attempts)):
        delays.append(delay)
        delay = min(reconnect_delay_max_s, delay * 2)
    return delays

