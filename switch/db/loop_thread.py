"""A private asyncio event loop in its own thread, awaited from Trio.

asyncpg speaks asyncio only. Hosting it with trio-asyncio emulates the asyncio
loop on top of Trio, which was measured (loadtest, docs/performance.md) at
~200 us of CPU per statement plus ~250 us per crossing here; a real asyncio loop
in a helper thread runs the same statements ~2.7x cheaper. The Trio side
submits a coroutine with ``run_coroutine_threadsafe`` and parks; the loop
thread wakes it through the Trio token when the coroutine finishes.

Cancellation: when the waiting Trio task is cancelled (a deadline), the asyncio
task is cancelled too and its late result is dropped, as with trio-asyncio.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import outcome
import trio

T = TypeVar("T")

thread_join_timeout_s = 10.0


class LoopThread:
    """Runs one asyncio loop forever in a daemon thread until :meth:`stop`."""

    def __init__(
        self,
        name: str = "asyncpg-loop",
        new_loop: Callable[[], asyncio.AbstractEventLoop] = asyncio.SelectorEventLoop,
    ) -> None:
        # Not asyncio.new_event_loop(): once trio-asyncio is imported its loop policy refuses
        # to make a loop from inside Trio. A selector loop is what Linux would give anyway
        # (``new_loop`` may be uvloop's, the ``uvloop-thread`` bridge).
        self.loop: asyncio.AbstractEventLoop = new_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop thread and return (or raise) its outcome in Trio."""
        token = trio.lowlevel.current_trio_token()
        task = trio.lowlevel.current_task()
        state: dict[str, Any] = {"abandoned": False}

        def deliver(future: concurrent.futures.Future[T]) -> None:  # runs in the Trio thread
            if not state["abandoned"]:
                trio.lowlevel.reschedule(task, outcome.capture(future.result))

        def on_done(future: concurrent.futures.Future[T]) -> None:  # runs in the loop thread
            try:
                token.run_sync_soon(deliver, future)
            except trio.RunFinishedError:
                pass  # nobody is waiting any more

        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        future.add_done_callback(on_done)

        def abort(_: Any) -> trio.lowlevel.Abort:
            state["abandoned"] = True
            future.cancel()  # cancels the asyncio task in the loop thread
            return trio.lowlevel.Abort.SUCCEEDED

        result: T = await trio.lowlevel.wait_task_rescheduled(abort)
        return result

    async def stop(self) -> None:
        """Stop the loop, wait for the thread, close the loop."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        await trio.to_thread.run_sync(self._thread.join, thread_join_timeout_s)
        if not self._thread.is_alive():
            self.loop.close()
