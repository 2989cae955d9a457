"""A deadline that holds even when PostgreSQL hangs.

Cancelling an asyncpg call from Trio (through trio-asyncio) waits for asyncpg's own
cleanup, which sends a cancel request to the server and waits for it: against a frozen
or black-holed server that wait has no end, so ``trio.fail_after`` around the call cannot
return. Here the call runs in a system task and the caller stops waiting at the deadline;
the abandoned call finishes (or fails) on its own once the server or the network comes back,
and its result is dropped. Its caller got ``LedgerUnavailable``: the outcome is unknown, as
for any timeout (spec 5.6: release by key).
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from ledger_adapter.errors import LedgerUnavailable

T = TypeVar("T")

# Extra time past the database call deadline before the caller stops waiting: the
# database call normally reports its own timeout first.
abandon_grace_s = 0.5


class _Box:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: Any = None
        self.error: BaseException | None = None


async def call_with_deadline(fn: Callable[..., Awaitable[T]], *args: Any, deadline_s: float) -> T:
    """Await ``fn(*args)`` for at most ``deadline_s`` (+ grace), else raise LedgerUnavailable."""
    box = _Box()

    async def run() -> None:
        try:
            box.value = await fn(*args)
        except Exception as exc:  # handed to the waiting caller; must not escape a system task
            box.error = exc
        except BaseException as exc:
            box.error = LedgerUnavailable("ledger shutting down")
            box.done.set()
            raise exc
        box.done.set()

    trio.lowlevel.spawn_system_task(run, name="ledger-call", context=contextvars.copy_context())
    with trio.move_on_after(deadline_s + abandon_grace_s):
        await box.done.wait()
    if not box.done.is_set():
        raise LedgerUnavailable(f"ledger call exceeded its {deadline_s:.1f}s deadline")
    if box.error is not None:
        raise box.error
    return box.value  # type: ignore[no-any-return]
