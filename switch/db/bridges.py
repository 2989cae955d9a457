"""The two ways asyncpg (asyncio-only) is reached from Trio; ``open_database`` picks one.

- ``thread``: a private asyncio loop in a helper thread
  (:mod:`switch.db.loop_thread`). A cancelled Trio caller abandons the asyncio task at
  once, so a frozen PostgreSQL cannot hold a caller past its deadline. Measured
  ~2.7x less CPU per round trip than trio-asyncio here (docs/performance.md).
- ``uvloop-thread`` (default): the same, with uvloop's event loop in the helper thread
  (asyncpg's own recommendation): measured 7-8% more 0200/s end to end and ~9% less switch
  CPU per 0200 than asyncio's selector loop (docs/performance.md).
- ``trio-asyncio``: trio-asyncio's asyncio loop running on top of Trio in the same
  thread, as the design card names it. Cancelling waits for asyncpg to cancel the
  query, which a frozen server can delay; the ledger adds its own deadline for that.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Protocol, TypeVar

from switch.db.loop_thread import LoopThread

T = TypeVar("T")

BRIDGES = ("thread", "uvloop-thread", "trio-asyncio")


class Bridge(Protocol):
    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run an asyncio coroutine and return (or raise) its outcome in Trio."""
        ...

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Schedule a plain callable on the asyncio loop (used to terminate a pool)."""
        ...


class _TrioAsyncioBridge:
    def __init__(self, loop: Any) -> None:
        self._loop = loop

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        result: T = await self._loop.run_aio_coroutine(coroutine)
        return result

    def call_soon(self, callback: Callable[[], object]) -> None:
        self._loop.call_soon(callback)


class _ThreadBridge:
    def __init__(self, loop_thread: LoopThread) -> None:
        self._loop_thread = loop_thread

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return await self._loop_thread.call(coroutine)

    def call_soon(self, callback: Callable[[], object]) -> None:
        self._loop_thread.loop.call_soon_threadsafe(callback)


@contextlib.asynccontextmanager
async def open_bridge(kind: str) -> AsyncIterator[Bridge]:
    """Open the named bridge for the duration of the block."""
    if kind in ("thread", "uvloop-thread"):
        loop_thread = LoopThread(new_loop=_uvloop() if kind == "uvloop-thread" else
                                 asyncio.SelectorEventLoop)
        try:
            yield _ThreadBridge(loop_thread)
        finally:
            await loop_thread.stop()
    elif kind == "trio-asyncio":
        import trio_asyncio  # imported only when chosen: it installs its own loop policy

        async with trio_asyncio.open_loop() as loop:
            yield _TrioAsyncioBridge(loop)
    else:
        raise ValueError(f"unknown database bridge {kind!r}; use one of {', '.join(BRIDGES)}")


def _uvloop() -> Callable[[], asyncio.AbstractEventLoop]:
    import uvloop  # imported only when chosen

    new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return new_loop
